"""A toy pretraining recipe and the whole demo on it, in one command: `pretrain(OUT/toy-sd, **KWARGS)` on two torch
threads (as `glass-demo --retrain` uses on this 2-core machine), then `glass-demo --model OUT/toy-sd --out OUT/demo`,
then results/pretrain_<TAG>_demo.json (the pretraining log's summary and the demo's metrics.json). Both compute on
the portable CPU paths, as `glass-demo --retrain` does, unless `--kernels native`.

  python benchmarks/toy_decoder_path/pretrain_and_demo.py OUT TAG '{"batch_size": 40, "steps": 660, "vae_batch_size": 32}'
  python benchmarks/toy_decoder_path/pretrain_and_demo.py OUT TAG --collect     # only the JSON, from finished folders"""
import argparse, json, subprocess, sys
from pathlib import Path
import torch
from glass.core import hold_kernels, KERNELS

RESULTS = Path(__file__).parent/"results"
PRETRAIN_KEYS = ("settings", "steps_done", "unet_seconds", "total_seconds", "torch_threads", "final_loss_mean_last_50")

def collect(out: Path, tag: str) -> Path:
    "Write results/pretrain_<tag>_demo.json from the finished `out/toy-sd` and `out/demo` folders; returns its path."
    log = json.loads((out/"toy-sd"/"train_log.json").read_text())
    res = {"pretrain": {k: log[k] for k in PRETRAIN_KEYS}, "demo": json.loads((out/"demo"/"metrics.json").read_text())}
    path = RESULTS/f"pretrain_{tag}_demo.json"
    path.write_text(json.dumps(res, indent=1) + "\n")
    return path

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out"); p.add_argument("tag"); p.add_argument("kwargs", nargs="?", default="{}", help="pretrain keywords, JSON")
    p.add_argument("--threads", type=int, default=2); p.add_argument("--collect", action="store_true")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (rate and ETA) for the pretraining and the demo")
    p.add_argument("--kernels", choices=KERNELS, default="portable", help="CPU code paths, as glass-demo's --kernels")
    a = p.parse_args(argv)
    out = Path(a.out)
    if not a.collect:
        from glass.toy.model import pretrain, quiet_libraries
        quiet_libraries(); hold_kernels(a.kernels, "pretrain_and_demo")
        pretrain(out/"toy-sd", progress=not a.no_progress, threads=a.threads, **json.loads(a.kwargs))
        subprocess.run([sys.executable, "-m", "glass.toy.demo", "--model", str(out/"toy-sd"), "--out", str(out/"demo"), "--kernels", a.kernels]
                       + (["--no-progress"] if a.no_progress else []), check=True)
    print(collect(out, a.tag))

if __name__ == "__main__":
    main()
