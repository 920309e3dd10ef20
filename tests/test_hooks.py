"Attention taps (glass.hooks): image unchanged, maps equal a brute-force recomputation, processors restored."
import math
import pytest
import torch
from glass.core import load_pretrained
from glass.hooks import attention_taps, attention_resolutions, encode_texts, TapProcessor

PROMPTS, CLASS_PROMPTS = ["a dog next to a red car", "a cat on a chair"], ["dog car", "cat chair"]


@pytest.fixture(scope="module")
def pipe(tiny):
    from diffusers import StableDiffusionPipeline
    p = load_pretrained(StableDiffusionPipeline, str(tiny["sd"]), "Stable Diffusion")
    p.set_progress_bar_config(disable=True)
    return p


def _run(pipe, steps=3, guidance=7.5):
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    return pipe(PROMPTS, num_inference_steps=steps, height=128, width=128, guidance_scale=guidance,
                generator=gens, output_type="pt").images


@pytest.mark.parametrize("guidance", [7.5, 1.0])
def test_image_bit_identical(pipe, guidance):
    plain = _run(pipe, guidance=guidance)
    with attention_taps(pipe.unet, 16, cross_res=8, self_res=16) as taps:
        taps.reset(encode_texts(pipe, CLASS_PROMPTS))
        tapped = _run(pipe, guidance=guidance)
    assert torch.equal(plain, tapped)
    assert taps.store.counts == {("cross", 8): 4 * 3, ("self", 16): 3 * 3}   # layers x steps
    assert taps.nbytes == (2 * 64 * 77 + 2 * 256 * 256) * 4


def _brute_force(x, c, layer):
    "Per-head softmax(q k^T / sqrt d) with the layer's weights applied by hand, float64, mean over heads."
    q, k = x.double() @ layer.to_q.weight.double().T, c.double() @ layer.to_k.weight.double().T
    d = q.shape[-1] // layer.heads
    out = torch.zeros(x.shape[0], x.shape[1], c.shape[1], dtype=torch.float64)
    for h in range(layer.heads):
        s = q[..., h*d:(h+1)*d] @ k[..., h*d:(h+1)*d].transpose(-1, -2) / math.sqrt(d)
        e = torch.exp(s - s.amax(-1, keepdim=True))
        out += e / e.sum(-1, keepdim=True) / layer.heads
    return out.float()


@pytest.mark.parametrize("kind", ["attn2", "attn1"])
def test_map_equals_brute_force(pipe, kind):
    name = f"down_blocks.1.attentions.0.transformer_blocks.0.{kind}.processor"
    layer = pipe.unet.get_submodule(name.rsplit(".", 1)[0])
    seen = []
    hook = layer.register_forward_pre_hook(lambda m, a, kw: seen.append(a[0].detach().clone()), with_kwargs=True)
    cemb = encode_texts(pipe, CLASS_PROMPTS)
    try:
        with attention_taps(pipe.unet, 16, layers=[name], steps=(1, 2)) as taps:
            taps.reset(cemb)
            _run(pipe, steps=3)
    finally:
        hook.remove()
    x = seen[1][2:]                                   # step 1, conditional half of the CFG batch
    if kind == "attn2":
        torch.testing.assert_close(taps.cross_attention(), _brute_force(x, cemb, layer), atol=1e-5, rtol=1e-4)
    else:
        torch.testing.assert_close(taps.self_attention(), _brute_force(x, x, layer), atol=1e-5, rtol=1e-4)


def test_restored_on_exit_and_exception(pipe):
    before = dict(pipe.unet.attn_processors)
    with pytest.raises(RuntimeError, match="boom"):
        with attention_taps(pipe.unet, 16, cross_res=8, self_res=16):
            procs = pipe.unet.attn_processors
            tapped = [n for n, p in procs.items() if isinstance(p, TapProcessor)]
            assert len(tapped) == 7 and all(procs[n] is before[n] for n in procs if n not in tapped)
            raise RuntimeError("boom")
    after = pipe.unet.attn_processors
    assert all(after[n] is before[n] for n in before)
    assert len(pipe.unet._forward_pre_hooks) == 0


def test_resolutions_and_errors(pipe):
    res = attention_resolutions(pipe.unet, 16)
    assert res["down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor"] == 16
    assert res["mid_block.attentions.0.transformer_blocks.0.attn2.processor"] == 8
    assert res["up_blocks.1.attentions.1.transformer_blocks.0.attn2.processor"] == 16
    with pytest.raises(ValueError, match="cross 32x32"):
        attention_taps(pipe.unet, 16, cross_res=32, self_res=16)
    with attention_taps(pipe.unet, 16, cross_res=8, self_res=16) as taps:
        with pytest.raises(RuntimeError, match="reset"):
            _run(pipe, steps=1)
