"""Candidate for glass.toy: layout tokens (one token per object: its class word + a linear map of its position, size
and colour; one background token: colour and gradient) as a fifth conditioning form of the toy pretraining."""
import copy, json, math, os, sys, time
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F
from torch import nn
from glass.toy.world import render_split, CLASSES
from glass.toy.model import (build_toy_parts, train_vae, encode_images, prompt_forms, toy_scheduler, toy_pipeline,
                             PROMPT_FORMS, TOY_MAX_TOKENS, PRETRAIN_STEPS, SAMPLE_PROMPTS, plot_pretrain_log,
                             sample_grid, _save_folder)

LAYOUT_FEATURES = 30
LAYOUT_TOKENS = 4

def _fourier(c: np.ndarray) -> np.ndarray:
    "sin and cos of pi*k*c for k = 1, 2, 4, 8: (..., 8)."
    a = np.multiply.outer(c, np.array([1, 2, 4, 8]) * np.pi)
    return np.concatenate([np.sin(a), np.cos(a)], -1)

def scene_layouts(images: np.ndarray, instance: np.ndarray, objects: list) -> tuple:
    """Layout of scenes (n,H,W,3) uint8 with instance maps (n,H,W): object features (n,3,30) (class one-hot, mean colour,
    size, Fourier features of the centroid), object classes (n,3) (-1 none) and background features (n,30) (mean colour,
    gradient)."""
    n, H, W = instance.shape
    yy, xx = np.meshgrid((np.arange(H) + 0.5) / H, (np.arange(W) + 0.5) / W, indexing="ij")
    A = np.stack([np.ones(H * W), xx.ravel() - 0.5, yy.ravel() - 0.5], 1)
    obj = np.zeros((n, 3, LAYOUT_FEATURES), np.float32); cls = -np.ones((n, 3), np.int64)
    bg = np.zeros((n, LAYOUT_FEATURES), np.float32)
    for i in range(n):
        img = images[i].astype(np.float32) / 255
        for k, name in enumerate(objects[i][:3]):
            m = instance[i] == k + 1
            if not m.any(): continue
            cls[i, k] = CLASSES.index(name)
            f = obj[i, k]; f[cls[i, k]] = 1; f[3:6] = img[m].mean(0) * 2 - 1; f[6] = np.sqrt(m.mean()) * 4 - 1
            f[7:15] = _fourier(xx[m].mean()); f[15:23] = _fourier(yy[m].mean())
        b = instance[i].ravel() == 0
        coef = np.linalg.lstsq(A[b], img.reshape(-1, 3)[b], rcond=None)[0]          # (1, x, y) x RGB
        bg[i, 3:6] = coef[0] * 2 - 1; bg[i, 23] = 1; bg[i, 24:30] = coef[1:].ravel() * 4
    return obj, cls, bg

class LayoutTokens(nn.Module):
    "Layout features -> tokens of the text encoder's space: final LayerNorm(word embedding of the class + Linear(features))."
    def __init__(self, tokenizer, dim: int = 64, features: int = LAYOUT_FEATURES):
        super().__init__()
        self.proj = nn.Linear(features, dim)
        nn.init.normal_(self.proj.weight, std=0.3); nn.init.zeros_(self.proj.bias)
        word = lambda w: tokenizer(w, add_special_tokens=False).input_ids[0]
        self.register_buffer("nouns", torch.tensor([word(c) for c in CLASSES]), persistent=False)
        self.bg_word, self.pad = word("picture"), tokenizer.pad_token_id

    def forward(self, text, obj, cls, bg, generator=None) -> torch.Tensor:
        "obj (B,3,F), cls (B,3), bg (B,F) -> (B,4,D): the objects in random order, the background, then pad tokens."
        emb, ln, B = text.embeddings.token_embedding, text.final_layer_norm, obj.shape[0]
        dev = obj.device
        toks = torch.cat([ln(emb(self.nouns[cls.clamp(min=0)]) + self.proj(obj)),
                          ln(emb(torch.full((B, 1), self.bg_word, device=dev)) + self.proj(bg[:, None]))], 1)
        valid = torch.cat([cls >= 0, torch.ones(B, 1, dtype=torch.bool, device=dev)], 1)
        order = (torch.rand(B, 4, generator=generator).to(dev) + (~valid) * 10.0).argsort(1)
        toks = torch.gather(toks, 1, order[..., None].expand(-1, -1, toks.shape[-1]))
        pad = ln(emb(torch.full((1, 1), self.pad, device=dev)))
        return torch.where(torch.gather(valid, 1, order)[..., None], toks, pad)

def pretrain(out, steps: int = PRETRAIN_STEPS, minutes=None, seed: int = 0, n_scenes: int = 6000, vae_steps: int = 300,
             batch_size: int = 64, lr: float = 1e-3, ema: float = 0.995, threads: int = 1, checkpoint_every: int = 100,
             max_steps=None, progress: bool = True, channels=(48, 96), text_layers: int = 0,
             position_embeddings: bool = False, prompt_mix=None, layout_share: float = 0.25, device: str = "cpu") -> dict:
    from tqdm.auto import tqdm
    out = Path(out)
    prompt_mix = dict(prompt_mix or PROMPT_FORMS)
    settings = dict(steps=steps, seed=seed, n_scenes=n_scenes, vae_steps=vae_steps, batch_size=batch_size, lr=lr, ema=ema,
                    channels=list(channels), text_layers=text_layers, position_embeddings=position_embeddings,
                    prompt_forms=prompt_mix, layout_share=layout_share)
    dev = torch.device(device)
    old_threads = torch.get_num_threads(); torch.set_num_threads(threads)
    t_start = time.perf_counter()
    try:
        data = render_split("pretrain", n_scenes, seed, progress=progress)
        X = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 127.5 - 1
        objs = [r["objects"] for r in data.records]
        lay = [scene_layouts(data.images, data.instance, objs), scene_layouts(data.images[:, :, ::-1], data.instance[:, :, ::-1], objs)]
        L_obj, L_cls, L_bg = (torch.stack([torch.from_numpy(l[k]) for l in lay], 1).to(dev) for k in range(3))  # (N, 2 flips, ...)
        parts = build_toy_parts(seed, channels=channels, text_layers=text_layers, position_embeddings=position_embeddings)
        tok, text, vae, unet = parts["tokenizer"], parts["text_encoder"], parts["vae"], parts["unet"]
        layout = LayoutTokens(tok, text.config.hidden_size)
        g = torch.Generator().manual_seed(seed)
        vae.to(dev); unet.to(dev); text.to(dev); layout.to(dev); X = X.to(dev)
        vae_loss = train_vae(vae, X, vae_steps, batch_size, generator=g, progress=progress)
        lat = encode_images(vae, X)
        sf = float(1 / lat.std())
        vae.register_to_config(scaling_factor=sf)
        lat = torch.stack([lat, encode_images(vae, X.flip(-1))], 1) * sf
        rng = np.random.default_rng([seed, 99])
        forms = [prompt_forms(r, rng) for r in data.records]
        ids = torch.stack([tok([f[k] for f in forms], padding="max_length", max_length=TOY_MAX_TOKENS, truncation=True,
                               return_tensors="pt").input_ids for k in range(4)], 1).to(dev)
        empty_id = ids[0, 3, :LAYOUT_TOKENS][None]                                   # the empty prompt's first tokens
        form_p = torch.tensor([prompt_mix[k] for k in PROMPT_FORMS])
        sched = toy_scheduler("ddpm")
        params = [p for m in (unet, text, layout) for p in m.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr, weight_decay=0.01)
        ema_unet, ema_text = copy.deepcopy(unet).requires_grad_(False), copy.deepcopy(text).requires_grad_(False)
        live = [p for m in (unet, text) for p in m.parameters() if p.requires_grad]
        ema_params = [dict(e.named_parameters())[n] for m, e in ((unet, ema_unet), (text, ema_text))
                      for n, p in m.named_parameters() if p.requires_grad]
        n_lay = int(round(batch_size * layout_share)); n_txt = batch_size - n_lay
        step, rows, stopped = 0, [], None
        unet.train(); text.train()
        t0 = time.perf_counter()
        bar = tqdm(total=steps, desc="toy UNet", disable=not progress, unit="step", mininterval=1.0)
        while step < steps:
            if minutes is not None and time.perf_counter() - t0 > minutes * 60: stopped = f"time budget of {minutes} min"
            if max_steps is not None and step >= max_steps: stopped = f"max_steps={max_steps}"
            if stopped: break
            idx = torch.randint(0, len(X), (batch_size,), generator=g)
            flip = torch.randint(0, 2, (batch_size,), generator=g)
            z0 = lat[idx.to(dev), flip.to(dev)]
            tid = ids[idx[:n_txt].to(dev), torch.multinomial(form_p, n_txt, replacement=True, generator=g).to(dev)]
            noise = torch.randn(z0.shape, generator=g).to(dev)
            t = torch.randint(0, 1000, (batch_size,), generator=g).to(dev)
            li, lf = idx[n_txt:].to(dev), flip[n_txt:].to(dev)
            cond_l = layout(text, L_obj[li, lf], L_cls[li, lf], L_bg[li, lf], g)
            drop = (torch.rand(n_lay, generator=g) < prompt_mix["empty"]).to(dev)
            cond_l = torch.where(drop[:, None, None], text(empty_id)[0].expand(n_lay, -1, -1), cond_l)
            for pg in opt.param_groups: pg["lr"] = lr * min(1.0, (step + 1) / 50)
            xt, target = sched.add_noise(z0, noise, t), sched.get_velocity(z0, noise, t)
            err_t = F.mse_loss(unet(xt[:n_txt], t[:n_txt], text(tid)[0]).sample, target[:n_txt], reduction="sum")
            err_l = F.mse_loss(unet(xt[n_txt:], t[n_txt:], cond_l).sample, target[n_txt:], reduction="sum")
            loss = (err_t + err_l) / target.numel()
            loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); opt.zero_grad(set_to_none=True)
            step += 1
            d = min(ema, (1 + step) / (10 + step))
            with torch.no_grad(): torch._foreach_lerp_(ema_params, live, 1 - d)
            per = target[0].numel()
            rows.append({"step": step, "loss": loss.item(), "loss_text": err_t.item() / (n_txt * per),
                         "loss_layout": err_l.item() / (n_lay * per), "seconds": round(time.perf_counter() - t0, 2)})
            bar.update(1); bar.set_postfix(loss=f"{np.mean([r['loss'] for r in rows[-20:]]):.4f}", refresh=False)
            if step % 50 == 0 and not progress: print(step, rows[-1], flush=True)
        bar.close()
        pipe = toy_pipeline({"tokenizer": tok, "text_encoder": ema_text.eval().cpu(), "vae": vae.cpu(), "unet": ema_unet.eval().cpu()})
        log = {"settings": settings, "steps_done": step, "stopped_early": stopped, "vae_loss": vae_loss, "rows": rows,
               "scaling_factor": sf, "unet_seconds": round(time.perf_counter() - t0, 1),
               "total_seconds": round(time.perf_counter() - t_start, 1), "torch_threads": threads,
               "parameters": {k: sum(p.numel() for p in m.parameters()) for k, m in
                              (("unet", unet), ("text_encoder", text), ("vae", vae), ("layout", layout))},
               "final_loss_mean_last_50": float(np.mean([r["loss"] for r in rows[-50:]])) if rows else None}
        from safetensors.torch import save_file
        _save_folder(pipe, out, {
            "train_log.json": lambda p: p.write_text(json.dumps(log)),
            "layout_tokens.safetensors": lambda p: save_file(layout.cpu().state_dict(), str(p)),
            "loss.png": lambda p: plot_pretrain_log(log, p),
            "samples.png": lambda p: sample_grid(pipe, SAMPLE_PROMPTS, seed=seed, path=p)})
        return log
    finally:
        torch.set_num_threads(old_threads)

if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(); p.add_argument("out"); p.add_argument("--share", type=float, default=0.25)
    p.add_argument("--steps", type=int, default=600); p.add_argument("--max-steps", type=int)
    a = p.parse_args()
    torch.set_num_threads(1)
    log = pretrain(a.out, steps=a.steps, max_steps=a.max_steps, layout_share=a.share, progress=False)
    print("done", log["total_seconds"], log["final_loss_mean_last_50"])
