"Shared test setup: offline hub, quiet progress bars, one tiny-model folder per session, the cores shared by the workers."
import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:   # pytest-xdist workers: each takes its share of the cores (and so do the processes a test starts)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))
import pytest
import torch

if _WORKERS > 1: torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def tiny():
    "Paths of the tiny random-weight models (built once per session)."
    from glass.testing import tiny_models
    return tiny_models()
