#!/usr/bin/env bash
# Wheels that the lent GPU machine lacks (its image has torch, transformers, accelerate, scipy, safetensors; not
# diffusers, importlib_metadata or nltk). Run here, then call the device with carry [".whl"] and benchmarks/gpu.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
py=${PY:-.venv/bin/python}
for pkg in diffusers==0.42.1 importlib_metadata nltk; do
  $py -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl "$pkg"
done
ls -la .whl
