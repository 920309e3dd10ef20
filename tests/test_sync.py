"The package is what the notebooks export: `make test` fails when glass/*.py and nbs/ disagree (a hand edit, a missed nbdev_export)."
import os, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _export_copy(tmp: Path) -> Path:
    "Export a copy of the notebooks into a scratch copy of the repository and return its package folder."
    for name in ("settings.ini", "setup.py"): shutil.copy(ROOT/name, tmp/name)
    shutil.copytree(ROOT/"nbs", tmp/"nbs")
    shutil.copytree(ROOT/"glass", tmp/"glass", ignore=shutil.ignore_patterns("*.py", "__pycache__", "assets"))
    env = {k: v for k, v in os.environ.items() if k != "IN_TEST"}   # nbdev_export does nothing under IN_TEST
    exe = Path(sys.executable).parent/"nbdev_export"
    subprocess.run([str(exe)], cwd=tmp, env=env, check=True, capture_output=True, text=True, timeout=300)
    return tmp/"glass"


def _sources(pkg: Path) -> dict:
    return {p.relative_to(pkg).as_posix(): p.read_text() for p in sorted(pkg.rglob("*.py")) if "__pycache__" not in p.parts}


def test_package_matches_notebooks(tmp_path):
    fresh, shipped = _sources(_export_copy(tmp_path)), _sources(ROOT/"glass")
    assert sorted(fresh) == sorted(shipped), (
        f"modules differ: only in glass/: {sorted(set(shipped) - set(fresh))}, only exported: {sorted(set(fresh) - set(shipped))}")
    stale = [name for name in fresh if fresh[name] != shipped[name]]
    assert not stale, f"glass/ differs from what nbs/ exports in {stale}: edit the notebooks, then run nbdev_export"


def test_readme_module_table_matches_the_imports():
    "The README's picture of the package (the layered module table) is what the code's imports say."
    import importlib.util
    spec = importlib.util.spec_from_file_location("module_graph", ROOT/"tools"/"module_graph.py")
    mg = importlib.util.module_from_spec(spec); spec.loader.exec_module(mg)
    table = mg.markdown(mg.module_graph(ROOT/"glass"))
    assert table in (ROOT/"README.md").read_text(), "README.md: the module table is stale; run tools/module_graph.py and paste it into nbs/index.ipynb"
    graph = mg.module_graph(ROOT/"glass")
    method = {"slots", "hooks", "refine", "guidance", "decoder", "model", "instances", "samplers"}
    assert not [m for m in method if m in graph and any(d.startswith("toy") for d in graph[m])], "the method imports the toy world"
    import ast
    users = [p.name for p in (ROOT/"glass").rglob("*.py") if p.name not in ("testing.py", "_modidx.py")
             for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.ImportFrom)
             and (n.module or "").endswith("testing") and (n.level > 0 or (n.module or "").startswith("glass"))]
    assert not users, f"library modules import the test fixtures: {users}"
