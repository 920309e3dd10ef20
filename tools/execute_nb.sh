#!/usr/bin/env bash
# Execute notebooks in place so that their small outputs (figures, short tables) are kept for the docs and README,
# then export and clean. Usage: tools/execute_nb.sh nbs/10_slot_attention.ipynb [more.ipynb ...]
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg
for nb in "$@"; do
  (cd "$(dirname "$nb")" && ../.venv/bin/exec_nb "$(basename "$nb")" --dest "$(basename "$nb")" --exc_stop)
done
.venv/bin/nbdev_export
.venv/bin/nbdev_clean
case " $* " in *index.ipynb*) .venv/bin/python tools/make_readme.py ;; esac
