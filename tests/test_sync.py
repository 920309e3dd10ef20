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
