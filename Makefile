# Two commands: `make demo` sets everything up and runs the embedded default; `make test` runs every test.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: setup demo test docs clean

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

docs: setup
	$(BIN)/nbdev_docs

clean:
	rm -rf _proc _docs runs .pytest_cache
