#!/usr/bin/env bash
# The whole GPU measurement in one call (device time is scarce): every variant and size, results to $OUT.
# First, here: benchmarks/fetch_wheels.sh (diffusers, importlib_metadata, nltk travel as wheels in .whl/). Then on the lent machine:
#   bash benchmarks/gpu.sh
set -uo pipefail
OUT=${OUT:-benchmarks/results}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, diffusers, transformers; print(torch.__version__, diffusers.__version__, transformers.__version__)" | tee -a "$OUT/gpu.txt"
if [ -z "${SKIP_TRAIN:-}" ]; then   # SKIP_TRAIN=1: generation only
  python3 benchmarks/train_step.py --size sd21-256 --device cuda --steps ${STEPS:-10} --warmup ${WARMUP:-3} \
    --models /tmp/glass-models --out "$OUT/train_step-sd21-256-cuda.json" 2>&1 | tee "$OUT/train_step.log"
fi
# generation at sd21-512: the paper's recipe (own sampler, 100 steps) and the fast one (FAST=sampler:steps, see RESULTS.md)
FAST=${FAST:-unipc:10}
for spec in default:100 "$FAST"; do
  timeout ${GEN_TIMEOUT:-150} python3 benchmarks/generate.py --size sd21-512 --device cuda --runs ${GEN_RUNS:-2} \
    --sampler "${spec%%:*}" --steps "${spec##*:}" --models /tmp/glass-models \
    --out "$OUT/generate-sd21-512-cuda-${spec%%:*}-${spec##*:}.json" 2>&1 | tee -a "$OUT/generate.log"
done
