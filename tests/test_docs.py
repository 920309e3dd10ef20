"`make docs` stops with one line and installs nothing without Quarto, runs the venv's tools with it; the docs check catches broken pages."
import importlib.util, json, os, shutil, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PY = shutil.which("python3", path="/usr/bin:/bin")
_spec = importlib.util.spec_from_file_location("check_docs", ROOT / "tools" / "check_docs.py")
check_docs = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(check_docs)


def _fake(d: Path, name: str, log: Path, extra: str = ""):
    "Write an executable `d/name` that appends its path, arguments and the `pip` it would see to `log`, then runs `extra`."
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(f'#!/bin/sh\necho "$0 $* | pip=$(command -v pip)" >> "{log}"\n{extra}\n')
    (d / name).chmod(0o755)


def _sandbox(tmp: Path, quarto: bool, venv: Path = None):
    "A repo copy whose venv (recording fakes unless `venv` is given) is set up, and a PATH of recording fakes."
    repo, fakes, log = tmp / "repo", tmp / "fakebin", tmp / "calls.log"
    (repo / "glass").mkdir(parents=True); (repo / "glass" / "__init__.py").touch(); (repo / "nbs").mkdir()
    for f in ("Makefile", "settings.ini", "setup.py"): shutil.copy(ROOT / f, repo); os.utime(repo / f, (0, 0))
    if venv is None: _fake_venv(venv := tmp / "venv", log)
    for n in ("pip", "pip3", "python", "python3", "sudo", "curl", "dpkg", "nbdev_docs"): _fake(fakes, n, log)
    if quarto: _fake(fakes, "quarto", log, "mkdir -p _docs && touch _docs/index.html")
    log.touch()
    assert quarto or not shutil.which("quarto", path=f"{fakes}:/usr/bin:/bin"), "this machine has Quarto in /usr/bin"
    return repo, venv, fakes, log


def _fake_venv(venv: Path, log: Path):
    "A venv of recording fakes whose setup is done (`.installed` newer than settings.ini and setup.py)."
    for n in ("python", "python3", "pip", "pip3", "nbdev_docs", "jupyter"): _fake(venv / "bin", n, log)
    _fake(venv / "bin", "nbdev_proc_nbs", log, "mkdir -p _proc")
    (venv / ".installed").touch()


def _make(repo: Path, venv: Path, fakes: Path, target="docs"):
    "Run `make target` in `repo` with the given venv and a PATH of only `fakes`, /usr/bin and /bin."
    env = {"PATH": f"{fakes}:/usr/bin:/bin", "HOME": str(repo)}
    return subprocess.run(["make", "--no-print-directory", "-C", str(repo), target, f"VENV={venv}"],
                          env=env, capture_output=True, text=True, timeout=30)


def _system_packages():
    "The distributions installed in the system Python, as sorted name==version strings."
    code = "import importlib.metadata as m; print(sorted(f'{d.name}=={d.version}' for d in m.distributions()))"
    return subprocess.run([SYSTEM_PY, "-E", "-c", code],
                          capture_output=True, text=True, check=True).stdout


REAL_VENV = Path(sys.prefix)   # the venv running the tests: its setup is done, as the repo copy's files are older


@pytest.mark.parametrize("real", [False, True], ids=["fake-venv", "real-venv"])
def test_docs_without_quarto_says_so_and_installs_nothing(tmp_path, real):
    if real and not (REAL_VENV / ".installed").exists(): pytest.skip("tests do not run in a venv made by make setup")
    repo, venv, fakes, log = _sandbox(tmp_path, quarto=False, venv=REAL_VENV if real else None)
    before = _system_packages()
    r = _make(repo, venv, fakes)
    lines = [l for l in (r.stdout + r.stderr).splitlines() if not l.startswith("make: ***")]
    assert r.returncode != 0
    assert len(lines) == 1 and "Quarto" in lines[0] and "make docs-pages" in lines[0], lines
    assert log.read_text() == "", "make docs ran something: " + log.read_text()
    assert _system_packages() == before


def test_docs_with_quarto_runs_only_the_venvs_tools(tmp_path):
    repo, venv, fakes, log = _sandbox(tmp_path, quarto=True)
    r = _make(repo, venv, fakes)
    assert r.returncode == 0, r.stdout + r.stderr
    calls = log.read_text().splitlines()
    assert [c.split(" | ")[0] for c in calls] == [f"{venv}/bin/nbdev_proc_nbs ", f"{venv}/bin/python tools/check_docs.py",
                                                  f"{fakes}/quarto render --no-cache"], calls
    assert all(c.endswith(f"pip={venv}/bin/pip") for c in calls), calls        # any pip they call is the venv's
    assert (repo / "_docs" / "index.html").exists()


def _nb(path: Path, cells: list):
    "Write a notebook of (source, outputs) code cells to `path`."
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": s, "outputs": o, "metadata": {}}
                                          for s, o in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def _doc(name: str):
    "A show_doc output as nbdev renders it."
    return [{"output_type": "execute_result", "data": {"text/markdown": f"---\n\n### {name}\n\n*Doc.*"}, "metadata": {}}]


@pytest.fixture
def site(tmp_path):
    "A notebook with an exported function and an explicit show_doc cell, and its correctly processed page."
    src = [("#| export\ndef f(): 'Doc.'", []), ("show_doc(g)", []), ("#| hide\nshow_doc(h)", [])]
    _nb(tmp_path / "nbs" / "a.ipynb", src)
    time.sleep(0.01)
    _nb(tmp_path / "_proc" / "a.ipynb", [("#| echo: false\n#| output: asis\nshow_doc(f)", _doc("f")),
                                         ("#| echo: false\n#| output: asis\nshow_doc(g)", _doc("g"))])
    for d in ("nbs", "_proc"): (tmp_path / d / "_quarto.yml").write_text("project:\n  type: website\n")
    return tmp_path


def test_check_docs_passes_a_good_site(site):
    assert check_docs.check(site) == ([], 1)


def test_check_docs_fails_on_a_missing_show_doc_output(site):
    page = site / "_proc" / "a.ipynb"
    nb = json.loads(page.read_text()); nb["cells"][1]["outputs"] = []; page.write_text(json.dumps(nb))
    problems, _ = check_docs.check(site)
    assert any("show_doc(g)" in p for p in problems) and any("`g`" in p for p in problems), problems


def test_check_docs_fails_on_an_undocumented_export_and_a_missing_page(site):
    _nb(site / "_proc" / "a.ipynb", [("#| echo: false\n#| output: asis\nshow_doc(g)", _doc("g"))])
    assert check_docs.check(site)[0] == [f"{site}/_proc/a.ipynb: no rendered doc for `f`"]
    (site / "_proc" / "a.ipynb").unlink()
    assert check_docs.check(site)[0] == [f"{site}/_proc/a.ipynb: missing"]


def test_check_docs_fails_on_a_second_or_linked_quarto_yml(site):
    (site / "_quarto.yml").write_text("project:\n  type: website\n")
    assert check_docs.check(site)[0] == [f"{site}/_quarto.yml: a second _quarto.yml (nbdev reads only {site}/nbs/_quarto.yml)"]
    (site / "nbs" / "_quarto.yml").unlink(); (site / "nbs" / "_quarto.yml").symlink_to("../_quarto.yml")
    assert "a link" in check_docs.check(site)[0][0]


def test_the_repository_has_one_quarto_yml():
    assert not (ROOT / "_quarto.yml").exists() and not (ROOT / "nbs" / "_quarto.yml").is_symlink()
    assert check_docs.check_quarto_yml(ROOT)[:1] in ([], [f"{ROOT}/_proc/_quarto.yml: missing or stale"])
