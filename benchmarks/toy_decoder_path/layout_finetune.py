"""Warm start: the shipped toy model fine-tuned with layout tokens as an extra conditioning form (the machine was too
busy for a from-scratch pretraining of layout_pretrain.py in the time left)."""
import argparse, copy, json, time
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F
from glass.toy.model import LayoutTokens, scene_layouts, LAYOUT_SLOTS as LAYOUT_TOKENS
from glass.toy.world import render_split
from glass.toy.model import (prompt_forms, PROMPT_FORMS, TOY_MAX_TOKENS, encode_images, toy_scheduler, _save_folder,
                             load_toy_pipeline, toy_pipeline)

def finetune(out, steps=120, share=0.5, n_scenes=2000, batch_size=64, lr=5e-4, ema=0.98, seed=0):
    torch.set_num_threads(1); torch.manual_seed(seed)
    pipe = load_toy_pipeline()
    tok, text, vae, unet = pipe.tokenizer, pipe.text_encoder, pipe.vae, pipe.unet
    data = render_split("pretrain", n_scenes, seed + 1)
    X = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 127.5 - 1
    objs = [r["objects"] for r in data.records]
    lay = [scene_layouts(data.images, data.instance, objs), scene_layouts(data.images[:, :, ::-1], data.instance[:, :, ::-1], objs)]
    L_obj, L_cls, L_bg = (torch.stack([torch.from_numpy(l[k]) for l in lay], 1) for k in range(3))
    sf = vae.config.scaling_factor
    lat = torch.stack([encode_images(vae, X), encode_images(vae, X.flip(-1))], 1) * sf
    rng = np.random.default_rng([seed, 99])
    forms = [prompt_forms(r, rng) for r in data.records]
    ids = torch.stack([tok([f[k] for f in forms], padding="max_length", max_length=TOY_MAX_TOKENS, truncation=True,
                           return_tensors="pt").input_ids for k in range(4)], 1)
    empty_id = ids[0, 3, :LAYOUT_TOKENS][None]
    form_p = torch.tensor([PROMPT_FORMS[k] for k in PROMPT_FORMS])
    sched = toy_scheduler("ddpm")
    layout = LayoutTokens(tok, text.config.hidden_size)
    unet.train().requires_grad_(True); text.train()
    for n, p in text.named_parameters(): p.requires_grad_("position_embedding" not in n)
    params = [p for m in (unet, text, layout) for p in m.parameters() if p.requires_grad]
    live = [p for m in (unet, text) for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr, weight_decay=0.01)
    ema_unet, ema_text = copy.deepcopy(unet).requires_grad_(False), copy.deepcopy(text).requires_grad_(False)
    ema_params = [dict(e.named_parameters())[n] for m, e in ((unet, ema_unet), (text, ema_text))
                  for n, p in m.named_parameters() if p.requires_grad]
    g = torch.Generator().manual_seed(seed)
    n_lay = int(round(batch_size * share)); n_txt = batch_size - n_lay
    rows, t0 = [], time.perf_counter()
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(X), (batch_size,), generator=g); flip = torch.randint(0, 2, (batch_size,), generator=g)
        z0 = lat[idx, flip]
        tid = ids[idx[:n_txt], torch.multinomial(form_p, n_txt, replacement=True, generator=g)]
        noise = torch.randn(z0.shape, generator=g); t = torch.randint(0, 1000, (batch_size,), generator=g)
        li, lf = idx[n_txt:], flip[n_txt:]
        cond_l = layout(text, L_obj[li, lf], L_cls[li, lf], L_bg[li, lf], g)
        drop = torch.rand(n_lay, generator=g) < 0.1
        cond_l = torch.where(drop[:, None, None], text(empty_id)[0].expand(n_lay, -1, -1), cond_l)
        for pg in opt.param_groups: pg["lr"] = lr * min(1.0, step / 20)
        xt, target = sched.add_noise(z0, noise, t), sched.get_velocity(z0, noise, t)
        err_t = F.mse_loss(unet(xt[:n_txt], t[:n_txt], text(tid)[0]).sample, target[:n_txt], reduction="sum")
        err_l = F.mse_loss(unet(xt[n_txt:], t[n_txt:], cond_l).sample, target[n_txt:], reduction="sum")
        loss = (err_t + err_l) / target.numel()
        loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); opt.zero_grad(set_to_none=True)
        with torch.no_grad(): torch._foreach_lerp_(ema_params, live, 1 - min(ema, (1 + step) / (10 + step)))
        per = target[0].numel()
        rows.append({"step": step, "loss": loss.item(), "loss_text": err_t.item() / (n_txt * per),
                     "loss_layout": err_l.item() / (n_lay * per), "seconds": round(time.perf_counter() - t0, 2)})
        if step % 10 == 0: print(rows[-1], flush=True)
    new = toy_pipeline({"tokenizer": tok, "text_encoder": ema_text.eval(), "vae": vae, "unet": ema_unet.eval()})
    from safetensors.torch import save_file
    log = {"settings": dict(warm_start="glass/assets/toy-sd", steps=steps, share=share, n_scenes=n_scenes, lr=lr, ema=ema),
           "rows": rows, "seconds": round(time.perf_counter() - t0, 1)}
    _save_folder(new, Path(out), {"train_log.json": lambda p: p.write_text(json.dumps(log)),
                                  "layout_tokens.safetensors": lambda p: save_file(layout.state_dict(), str(p))})
    return log

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", help="the folder to write the fine-tuned model to")
    ap.add_argument("steps", type=int, nargs="?", default=120)
    args = ap.parse_args()
    print(finetune(args.out, steps=args.steps)["seconds"])
