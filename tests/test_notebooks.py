"One test per notebook, run through nbdev's own runner and honouring `tst_flags` (slow, gpu) from settings.ini."
import os
from pathlib import Path
import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_nb   # aliased so pytest does not collect nbdev's function

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))


def _skip_flags():
    flags = get_config(path=ROOT).get("tst_flags", "").split()
    forced = os.environ.get("GLASS_TEST_FLAGS", "").split()   # e.g. GLASS_TEST_FLAGS=slow to run slow cells
    return [f for f in flags if f not in forced]


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_notebook(nb):
    ok, secs = run_nb(nb, skip_flags=_skip_flags(), basepath=ROOT)
    assert ok, f"{nb.name} failed (see the traceback above)"
