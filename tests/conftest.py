"Shared test setup: offline hub, quiet progress bars, one tiny-model folder per session."
import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
import pytest


@pytest.fixture(scope="session")
def tiny():
    "Paths of the tiny random-weight models (built once per session)."
    from glass.testing import tiny_models
    return tiny_models()
