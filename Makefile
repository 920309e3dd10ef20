# Two commands: `make demo` sets everything up and runs the embedded default; `make test` runs every test.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
QUARTO ?= quarto
# nbdev and Quarto run with the venv's bin first on PATH: whatever they call (pip, python, jupyter) is the venv's
ABIN = $(abspath $(BIN))
IN_VENV = PATH="$(ABIN):$$PATH" VIRTUAL_ENV="$(abspath $(VENV))"
NO_QUARTO = make docs: the site needs Quarto (https://quarto.org/docs/get-started/), not found on PATH; \
without it, make docs-pages builds the processed pages offline

.PHONY: setup demo test docs docs-pages lab clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python settings.ini setup.py
	$(BIN)/pip install -q $(TORCH)          # CPU wheel first: a bare `torch` would pull a multi-GB CUDA build
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/glass-demo $(ARGS)

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/pytest $(ARGS)

# The site in _docs/. Quarto is looked for (on the PATH the render uses) before anything runs, so without it nothing is
# installed anywhere: nbdev would try to install Quarto, then `pip install -e` with whatever pip comes first on PATH.
# Not nbdev_docs: it would also re-render README.md with Quarto, and tools/make_readme.py owns README.md.
docs:
	@PATH="$(ABIN):$$PATH"; command -v $(QUARTO) >/dev/null 2>&1 || { echo "$(NO_QUARTO)" >&2; exit 1; }
	@$(MAKE) --no-print-directory setup
	$(IN_VENV) $(ABIN)/nbdev_proc_nbs
	$(IN_VENV) $(ABIN)/python tools/check_docs.py
	cd _proc && $(IN_VENV) $(QUARTO) render --no-cache
	rm -rf _docs && mv _proc/_docs _docs

# The processed pages in _proc/, offline and without Quarto, then the docs check.
docs-pages: setup
	$(IN_VENV) $(ABIN)/python -c "import nbdev.serve as s; s.proc_nbs(n_workers=0)"
	$(IN_VENV) $(ABIN)/python tools/check_docs.py

# JupyterLab on nbs/, its kernels the venv's Python (the kernel spec runs `python` from PATH).
lab: setup
	$(IN_VENV) $(ABIN)/jupyter lab --ServerApp.root_dir=nbs $(ARGS)

clean:
	rm -rf _proc _docs runs .pytest_cache
