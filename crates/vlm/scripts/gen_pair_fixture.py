"""Two screenshots in one prompt ("what changed?"): the reference for the Rust port.

Run after gen_fixture.py and gen_chat_fixture.py, from the repository root, in a throwaway venv:
    /tmp/venv-tpl/bin/pip install torch "transformers==4.57.6" jinja2 safetensors pillow numpy
    /tmp/venv-tpl/bin/python crates/vlm/scripts/gen_pair_fixture.py

Loads the committed tiny checkpoint in f32, renders the prompt with the fixture's own chat
template (two images, numbered with add_vision_id as the port does for several images), and
records input ids, 3-D position ids for both image runs, prefill logits and teacher-forced
logits over 12 greedy tokens in expected_pair.safetensors (+ expected_pair.json).
"""
import json
import os

import torch
import transformers
from PIL import Image, ImageDraw
from safetensors.torch import save_file
from transformers import PreTrainedTokenizerFast, Qwen2VLImageProcessor, Qwen3VLForConditionalGeneration

assert transformers.__version__.startswith("4.57."), transformers.__version__
OUT = "models/test/tiny-qwen3-vl"
tok = PreTrainedTokenizerFast(tokenizer_file=f"{OUT}/tokenizer.json")
template = json.load(open(f"{OUT}/chat_template.json", encoding="utf-8"))["chat_template"]
model = Qwen3VLForConditionalGeneration.from_pretrained(OUT, dtype=torch.float32, attn_implementation="eager").eval()
improc = Qwen2VLImageProcessor.from_pretrained(OUT)

before = Image.open(f"{OUT}/panel.png").convert("RGB")  # 128x96: grid 6x8
# "after": a wider panel (160x96: grid 6x10, no resize) whose line has flattened
after = Image.new("RGB", (160, 96), (24, 26, 32))
d = ImageDraw.Draw(after)
d.rectangle([2, 2, 157, 93], outline=(80, 80, 90))
d.line([(0, 70), (160, 68)], fill=(60, 200, 90), width=3)
d.text((4, 4), "CPU % 12", fill=(255, 255, 255))
after.save(f"{OUT}/pair_after.png")
after = Image.open(f"{OUT}/pair_after.png").convert("RGB")

question = "What changed between them?"
messages = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": question}]}]
text = tok.apply_chat_template(messages, chat_template=template, tokenize=False,
                               add_generation_prompt=True, add_vision_id=True)
im = improc(images=[before, after], return_tensors="pt")
pixel_values, grid = im["pixel_values"], im["image_grid_thw"]
counts = [int(g.prod()) // 4 for g in grid]
parts = text.split("<|image_pad|>")
assert len(parts) == 3
expanded = parts[0] + "<|image_pad|>" * counts[0] + parts[1] + "<|image_pad|>" * counts[1] + parts[2]
input_ids = tok([expanded], add_special_tokens=False, return_tensors="pt")["input_ids"]
with torch.no_grad():
    attn = torch.ones_like(input_ids)
    pos, deltas = model.model.get_rope_index(input_ids, grid, None, attention_mask=attn)
    out = model(input_ids=input_ids, attention_mask=attn, pixel_values=pixel_values, image_grid_thw=grid,
                use_cache=False)
    gen = input_ids
    for _ in range(12):
        lg = model(input_ids=gen, attention_mask=torch.ones_like(gen), pixel_values=pixel_values,
                   image_grid_thw=grid, use_cache=False).logits
        gen = torch.cat([gen, lg[:, -1].argmax(-1, keepdim=True)], dim=1)
    tf = model(input_ids=gen, attention_mask=torch.ones_like(gen), pixel_values=pixel_values,
               image_grid_thw=grid, use_cache=False).logits
assert torch.allclose(tf[0, : input_ids.shape[1]], out.logits[0], atol=1e-5)
# Kept small: pixels as f16 (the Rust side compares its f32 pixels rounded the same way) and
# only the logits rows from the last prompt position on.
n = input_ids.shape[1]
fx = {"input_ids": input_ids[0].int(), "pixel_values": pixel_values.half(), "image_grid_thw": grid.int(),
      "position_ids": pos[:, 0].int(), "rope_delta": deltas.reshape(-1).int(),
      "logits_prefill_last": out.logits[0, -1:], "gen_ids": gen[0].int(),
      "logits_teacher_forced_tail": tf[0, n - 1:]}
save_file({k: v.contiguous() for k, v in fx.items()}, f"{OUT}/expected_pair.safetensors")
os.chmod(f"{OUT}/expected_pair.safetensors", 0o644)
with open(f"{OUT}/expected_pair.json", "w") as f:
    json.dump({"text": text, "question": question, "images": ["panel.png", "pair_after.png"],
               "grid_thw": grid.tolist(), "generated_text": tok.decode(gen[0, input_ids.shape[1]:])}, f, indent=1)
print("pair ids", input_ids.shape, "grids", grid.tolist(), "gen", gen[0, input_ids.shape[1]:].tolist())
