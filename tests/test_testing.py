"The tiny models load through the real loading code and run once."
import numpy as np
import torch
from glass.core import load_pretrained


def test_tiny_sd_pipeline_runs(tiny):
    from diffusers import StableDiffusionPipeline
    pipe = load_pretrained(StableDiffusionPipeline, str(tiny["sd"]), "Stable Diffusion")
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    img = pipe("a red circle", num_inference_steps=2, height=64, width=64, output_type="np").images
    assert img.shape == (1, 64, 64, 3) and np.isfinite(img).all()


def test_tiny_dinov2_runs(tiny):
    from transformers import Dinov2Model
    m = load_pretrained(Dinov2Model, str(tiny["dinov2"]), "DINOv2")
    out = m(pixel_values=torch.randn(1, 3, 28, 42)).last_hidden_state
    assert out.shape == (1, 1 + 2 * 3, m.config.hidden_size)


def test_tiny_blip2_runs(tiny):
    from transformers import Blip2ForConditionalGeneration, Blip2Processor
    m = load_pretrained(Blip2ForConditionalGeneration, str(tiny["blip2"]), "BLIP-2")
    p = load_pretrained(Blip2Processor, str(tiny["blip2"]), "BLIP-2")
    out = m.generate(**p(images=[np.zeros((20, 20, 3), np.uint8)], return_tensors="pt"), max_new_tokens=2)
    assert out.shape[0] == 1 and isinstance(p.batch_decode(out, skip_special_tokens=True)[0], str)


def test_clip_tokenizer_whole_words():
    from glass.tokenizers import build_clip_tokenizer
    tok = build_clip_tokenizer(["hot", "dog", "person"])
    assert tok.convert_ids_to_tokens(tok("hot dog person").input_ids)[1:4] == ["hot</w>", "dog</w>", "person</w>"]
