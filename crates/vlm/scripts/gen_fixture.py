"""Generate the tiny random Qwen3-VL reference fixture for opslens-vlm's parity tests.

Run once, from the repository root, in a throwaway venv (never needed by tests or CI):
    python -m venv /work/venv-ref
    /work/venv-ref/bin/pip install torch "transformers==4.57.6" tokenizers pillow numpy safetensors
    /work/venv-ref/bin/python crates/vlm/scripts/gen_fixture.py

Writes models/test/tiny-qwen3-vl/: config.json, model.safetensors (bf16, as real checkpoints),
tokenizer.json, preprocessor_config.json, two synthetic dashboard PNGs and, per case,
expected_<case>.safetensors holding every stage the Rust port must reproduce.

The reference runs in f32 on weights rounded to bf16, so Rust loading the bf16 file and
upcasting sees bit-identical parameters. The processor's placeholder expansion is done here by
hand (Qwen3VLProcessor needs torchvision for its video processor); it is the same rule:
each <|image_pad|> becomes grid_t*grid_h*grid_w / merge_size**2 copies.
"""
import json
import os

import numpy as np
import torch
import transformers
from PIL import Image, ImageDraw
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import Qwen2TokenizerFast, Qwen2VLImageProcessor, Qwen3VLConfig, Qwen3VLForConditionalGeneration

assert transformers.__version__.startswith("4.57."), transformers.__version__
torch.manual_seed(0)
OUT = "models/test/tiny-qwen3-vl"
os.makedirs(OUT, exist_ok=True)

# 1) toy byte-level BPE tokenizer with the Qwen special tokens
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
           "<|image_pad|>", "<|video_pad|>"]
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
corpus = ["CPU usage spiked to 97% at 14:05", "error 502 Bad Gateway", "p99 latency ms",
          "user", "assistant", "system", "What spiked on this dashboard?", "You are a helpful assistant."]
tok.train_from_iterator(corpus * 50, trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL,
                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
hf_tok = Qwen2TokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
ids = {t: hf_tok.convert_tokens_to_ids(t) for t in SPECIAL}
hf_tok.save_pretrained(OUT)

# 2) tiny config: same architecture, tiny sizes (text head_dim 16 -> mrope_section sums to 8)
cfg = Qwen3VLConfig(
    text_config=dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
                     rope_theta=5e6, rope_scaling={"rope_type": "default", "mrope_section": [2, 3, 3],
                                                   "mrope_interleaved": True},
                     tie_word_embeddings=True, initializer_range=0.1, rms_norm_eps=1e-6),
    vision_config=dict(depth=3, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16,
                       spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=64,
                       num_position_embeddings=64, deepstack_visual_indexes=[0, 1], initializer_range=0.1),
    image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
    vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    tie_word_embeddings=True)
cfg._attn_implementation = "eager"
model = Qwen3VLForConditionalGeneration(cfg).eval()
with torch.no_grad():  # non-trivial norm weights / biases so they are tested too
    for name, p in model.named_parameters():
        if name.endswith("norm.weight") or "norm1" in name or "norm2" in name or name.endswith(".bias"):
            p.add_(torch.randn_like(p) * 0.1)
    # round parameters (not buffers such as rotary inv_freq) to bf16, the dtype saved below
    for p in model.parameters():
        p.copy_(p.bfloat16().float())
model.to(torch.bfloat16)
model.save_pretrained(OUT, safe_serialization=True)
# reload in f32 so every buffer is recomputed exactly as a user's f32 load would
model = Qwen3VLForConditionalGeneration.from_pretrained(OUT, dtype=torch.float32, attn_implementation="eager").eval()

improc = Qwen2VLImageProcessor(patch_size=16, merge_size=2, temporal_patch_size=2,
                               image_mean=[0.5] * 3, image_std=[0.5] * 3,
                               min_pixels=64 * 64, max_pixels=256 * 256)
improc.save_pretrained(OUT)


# 3) deterministic synthetic "dashboard" images (committed PNGs)
def dashboard(w, h, path):
    img = Image.new("RGB", (w, h), (24, 26, 32))
    d = ImageDraw.Draw(img)
    d.rectangle([2, 2, w - 3, h - 3], outline=(80, 80, 90))
    pts = [(int(x * w / 8), int(h * (0.8 - 0.5 * ((x * 37) % 11) / 11))) for x in range(9)]
    d.line(pts, fill=(230, 60, 50), width=3)
    d.line([(0, h // 3), (w, h // 3)], fill=(240, 200, 0), width=1)
    d.text((4, 4), "CPU % 97", fill=(255, 255, 255))
    img.save(path)
    return Image.open(path).convert("RGB")


CASES = {
    # multiple of 32: no resize, grid 6x8
    "panel": (dashboard(128, 96, f"{OUT}/panel.png"), "What spiked?"),
    # forces a resize (230x100 -> 224x96) and a non-square 6x14 grid
    "wide": (dashboard(230, 100, f"{OUT}/wide.png"), "Summarise the error rate panel."),
}

image_pad = "<|image_pad|>"
layers = model.model.language_model.layers
sampler = torch.Generator().manual_seed(1)
for case, (img, question) in CASES.items():
    text = ("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>" + question +
            "<|im_end|>\n<|im_start|>assistant\n")
    im = improc(images=[img], return_tensors="pt")
    pixel_values, grid = im["pixel_values"], im["image_grid_thw"]
    if case == "wide":
        # Resized pixels only match Rust to ~1e-2 anyway (PIL vs image-rs bicubic), so store
        # them as f16 and feed the f16-rounded values to the reference: halves the fixture.
        pixel_values = pixel_values.half().float()
    n_img = int(grid.prod()) // 4
    expanded = text.replace(image_pad, "<|placeholder|>" * n_img).replace("<|placeholder|>", image_pad)
    input_ids = hf_tok([expanded], return_tensors="pt")["input_ids"]
    attn = torch.ones_like(input_ids)
    captured = {}

    def hook(i):
        def f(_m, _a, out):
            captured.setdefault(f"layer_{i}", (out[0] if isinstance(out, tuple) else out)[0].clone())
        return f

    def pre_hook(_m, args, kwargs):
        h = kwargs.get("hidden_states", args[0] if args else None)
        captured.setdefault("inputs_embeds", h[0].clone())

    hs = [l.register_forward_hook(hook(i)) for i, l in enumerate(layers)]
    hs.append(layers[0].register_forward_pre_hook(pre_hook, with_kwargs=True))
    with torch.no_grad():
        pos, deltas = model.model.get_rope_index(input_ids, grid, None, attention_mask=attn)
        img_embeds, deepstack = model.model.visual(pixel_values, grid_thw=grid)
        out = model(input_ids=input_ids, attention_mask=attn, pixel_values=pixel_values, image_grid_thw=grid,
                    use_cache=False)
        for h in hs:
            h.remove()
        # 16-token continuation (greedy for "panel", sampled for "wide"), recomputed from scratch
        # every step: the reference for teacher forcing
        gen = input_ids
        # Always pass attention_mask: without it transformers 4.57 infers "packed sequences" from
        # the non-monotonic M-RoPE text positions and masks image/after-image tokens off the
        # prefix (a reference bug; generate() always passes the mask).
        for _ in range(16):
            lg = model(input_ids=gen, attention_mask=torch.ones_like(gen), pixel_values=pixel_values,
                       image_grid_thw=grid, use_cache=False).logits
            if case == "panel":
                nxt = lg[:, -1].argmax(-1, keepdim=True)
            else:  # random-weight greedy output collapses to one token; sample for variety
                nxt = torch.multinomial(torch.softmax(lg[:, -1] * 0.5, -1), 1, generator=sampler)
            gen = torch.cat([gen, nxt], dim=1)
        tf = model(input_ids=gen, attention_mask=torch.ones_like(gen), pixel_values=pixel_values,
                   image_grid_thw=grid, use_cache=False).logits
        full_pos, _ = model.model.get_rope_index(gen, grid, None, attention_mask=torch.ones_like(gen))
    assert torch.allclose(tf[0, : input_ids.shape[1]], out.logits[0], atol=1e-5)
    fx = {
        "input_ids": input_ids[0].int(), "pixel_values": pixel_values.half() if case == "wide" else pixel_values.float(), "image_grid_thw": grid.int(),
        "position_ids": pos[:, 0].int(), "full_position_ids": full_pos[:, 0].int(),
        "rope_delta": deltas.reshape(-1).int(),
        "image_embeds": img_embeds, "logits_prefill": out.logits[0], "gen_ids": gen[0].int(),
        "logits_teacher_forced": tf[0], **captured,
    }
    for i, d in enumerate(deepstack):
        fx[f"deepstack_{i}"] = d
    save_file({k: v.contiguous() for k, v in fx.items()}, f"{OUT}/expected_{case}.safetensors")
    with open(f"{OUT}/expected_{case}.json", "w") as f:
        json.dump({"text": text, "expanded_text": expanded, "image": f"{case}.png", "question": question,
                   "image_size": list(img.size), "grid_thw": grid[0].tolist(),
                   "generated_text": hf_tok.decode(gen[0, input_ids.shape[1]:])}, f, indent=1)
    print(case, "ids", input_ids.shape, "grid", grid.tolist(), "gen", gen[0, input_ids.shape[1]:].tolist())

# 5) a strong downscale (antialiased bicubic path): the PIL-resized image itself, checked
# against the processor here so the Rust resize can be compared pixel for pixel via PNG.
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize
big = dashboard(700, 330, f"{OUT}/big.png")
rh, rw = smart_resize(330, 700, factor=32, min_pixels=64 * 64, max_pixels=256 * 256)
small = big.resize((rw, rh), Image.BICUBIC)
small.save(f"{OUT}/big_resized_pil.png")
pv = improc(images=[big], return_tensors="pt")["pixel_values"]
ref = (np.asarray(small, dtype=np.float32) / 255.0 - 0.5) / 0.5
assert abs(float(pv.abs().sum()) - float(np.abs(ref).sum() * 2)) < 1e-2 * pv.numel(), "processor != PIL resize"
print("big", (rh, rw))

with open(f"{OUT}/README.md", "w") as f:
    f.write("Tiny random Qwen3-VL checkpoint + reference outputs from transformers "
            f"{transformers.__version__} / torch {torch.__version__}.\n"
            "Generated by crates/vlm/scripts/gen_fixture.py; consumed by crates/vlm/tests. Not a usable model.\n"
            "tall.png and tall_resized_pil13.png (Pillow 13 BICUBIC) come from crates/vlm/scripts/gen_resize_fixture.py.\n")
