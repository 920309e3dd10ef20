"""Proxy of the demo's decoder-path numbers for a toy model folder, stage by stage as in `glass.toy.demo.run_demo`
(seed 0, full sizes): pseudo-mask object mIoU of real `val` scenes; then runs trained for the demo's 120 steps, each with
its conditioning gap, PSNR and mBO_i: `unguided_real` (guidance weight 0 on the 192 real training scenes: no generation
needed), and the demo's `unguided` and `glass` runs on generated GLASS data (generated first, once per OUT).
`python benchmarks/toy_decoder_path/probe_model.py MODEL OUT [--runs unguided_real,unguided,glass] [--set decoder.t_min=0.5]`"""
import argparse, json, time
from pathlib import Path
import torch
from glass.config import apply_overrides
from glass.toy.world import render_split, save_split, write_records
from glass.toy.model import load_toy_pipeline, quiet_libraries
from glass.toy.demo import (SIZES, RUNS, INSTANCE_GENERATION, demo_config, real_scene_masks, mask_iou_scores,
                            write_real_shards, train_and_evaluate, decoder_path, unconditional_reference, run_metrics,
                            generated_scores)

def main(model, out, runs, seed=0, extra=None):
    torch.set_num_threads(1); quiet_libraries()
    out, size = Path(out), SIZES["full"]
    out.mkdir(parents=True, exist_ok=True)
    res_file = out/"probe.json"
    res = json.loads(res_file.read_text()) if res_file.exists() else {"model": str(model)}
    save = lambda: res_file.write_text(json.dumps(res, indent=1))
    cfg_for = lambda **ch: demo_config(model, size, seed, **ch)
    train_split, val = render_split("train", size.n_train, seed), render_split("val", size.n_val, seed)
    pipe = load_toy_pipeline(model)
    if "pseudo_masks" not in res:
        t0 = time.perf_counter()
        pseudo, _ = real_scene_masks(pipe, val, cfg_for(), size.timesteps, seed=seed, progress=False)
        pm = mask_iou_scores(pseudo, val.classes)
        res["pseudo_masks"] = {"object_miou": pm["object_miou"], "class_miou": pm["class_miou"],
                               "seconds": round(time.perf_counter() - t0, 1)}
        save(); print("pseudo masks", res["pseudo_masks"], flush=True)
    data = {"unguided_real": out/"gen"/"real", "unguided": out/"gen"/"glass", "glass": out/"gen"/"glass"}
    if "unguided_real" in runs: write_real_shards(train_split, pipe.vae, out/"gen"/"real", progress=False)
    if {"unguided", "glass"} & set(runs) and "generate" not in res:
        from glass.generate import generate
        t0 = time.perf_counter()
        write_records(train_split, out/"train_prompts.jsonl")
        generate(apply_overrides(cfg_for(), {"prompts.source": "caption", **INSTANCE_GENERATION}), out/"train_prompts.jsonl",
                 out/"gen"/"glass", pipe=pipe, progress=False, cpu=True)
        res["generate"] = {"vs_colour_object_miou": generated_scores(out/"gen"/"glass")["object_miou"],
                           "seconds": round(time.perf_counter() - t0, 1)}
        save(); print("generate", res["generate"], flush=True)
    sets = {"unguided_real": {"guidance.weight": 0.0}, "unguided": RUNS["unguided"]["set"], "glass": RUNS["glass"]["set"]}
    for name in runs:
        if name in res.get("runs", {}): continue
        m, mod, secs = train_and_evaluate(cfg_for(**{**sets[name], **(extra or {})}), data[name], out/"runs"/name, val, False, "cpu")
        rec, _ = decoder_path(mod, val.images, size.n_recon, size.recon_steps, seed, val.classes)
        res.setdefault("runs", {})[name] = {"mbo_i": run_metrics(m)["dinosaur"]["mbo_i"],
                                            "mbo_i_release": run_metrics(m)["glass"]["mbo_i"],
                                            **{k: rec[k] for k in ("conditioning_gap", "unconditional_gap", "psnr", "placement", "losses")},
                                            "seconds": {k: round(v, 1) for k, v in secs.items()}}
        save(); print(name, {k: v for k, v in res["runs"][name].items() if k != "losses"}, flush=True)
    if "unconditional_psnr" not in res:
        res["unconditional_psnr"] = unconditional_reference(mod.decoder, val.images, size.n_recon, 4, size.recon_steps, seed)[0]["psnr"]
        save()
    print(json.dumps({k: v for k, v in res.items()}, indent=1)[:3000])

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("model"); p.add_argument("out")
    p.add_argument("--runs", default="unguided_real")
    p.add_argument("--set", action="append", default=[], help="FIELD=VALUE on top of every run's settings (repeatable)")
    a = p.parse_args()
    main(a.model, a.out, a.runs.split(","), extra=dict(kv.split("=", 1) for kv in a.set))
