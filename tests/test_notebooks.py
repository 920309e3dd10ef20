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


def _runs_in_docs_build(src: str) -> bool:
    "nbdev's docs build (proc_nbs) executes every non-exported cell that holds an import; True if such a cell also runs code."
    import ast, re
    if re.search(r"^#\|\s*(export|exports|exporti|exec_doc)\b", src, re.M) or "nbdev_export()" in src: return False
    try: tree = ast.parse(re.sub(r"^\s*[%!].*$", "", src, flags=re.M))
    except SyntaxError: return False
    nodes = list(ast.walk(tree))
    return any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in nodes) and any(isinstance(n, (ast.Expr, ast.Assign)) for n in nodes)


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_imports_stand_in_cells_of_their_own(nb):
    "A cell mixing imports with other code is run by the docs build out of order (and fails or slows it): split it."
    import json
    bad = [i for i, c in enumerate(json.loads(nb.read_text())["cells"])
           if c["cell_type"] == "code" and _runs_in_docs_build("".join(c["source"]))]
    assert not bad, f"{nb.name}: cells {bad} mix imports with other code; move the imports into a cell of their own"
