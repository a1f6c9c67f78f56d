"""Generate the Pillow 13 resize fixture for opslens-vlm's resize tests (issue 14, gap 1).

Pillow 13.0 runs the vertical pass first when the height shrinks by more than twice as many
pixels as the width ((in_h - out_h) > 2 * (in_w - out_w) and in_h > out_h); Pillow <= 12.3
always ran the horizontal pass first. Tall portrait screenshots take the new path, so this
fixture is a tall synthetic dashboard and its BICUBIC resize by Pillow 13 at the size the
processor's smart_resize picks under the tiny model's pixel budget.

Run once, from the repository root, in a throwaway venv (no torch, no transformers needed):
    python -m venv /tmp/pil13 && /tmp/pil13/bin/pip install "pillow>=13"
    /tmp/pil13/bin/python crates/vlm/scripts/gen_resize_fixture.py

Writes models/test/tiny-qwen3-vl/tall.png (the input) and tall_resized_pil13.png (expected).
"""
import math

import PIL
from PIL import Image, ImageDraw

assert int(PIL.__version__.split(".")[0]) >= 13, PIL.__version__
OUT = "models/test/tiny-qwen3-vl"


def smart_resize(height, width, factor=32, min_pixels=64 * 64, max_pixels=256 * 256):
    """transformers' qwen2_vl smart_resize (the tiny model's preprocessor bounds)."""
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


# A portrait "dashboard": stacked panels with a spiky series, thresholds and text, so both
# axes carry detail and the 8-bit intermediate of either pass order shows in the result.
W, H = 330, 900
img = Image.new("RGB", (W, H), (24, 26, 32))
d = ImageDraw.Draw(img)
for p in range(4):
    top = p * H // 4
    d.rectangle([2, top + 2, W - 3, top + H // 4 - 3], outline=(80, 80, 90))
    pts = [(int(x * W / 10), top + int(H / 4 * (0.8 - 0.6 * ((x * 37 + p * 11) % 13) / 13)))
           for x in range(11)]
    d.line(pts, fill=(230, 60 + 40 * p, 50), width=2)
    d.line([(0, top + H // 12), (W, top + H // 12)], fill=(240, 200, 0), width=1)
    d.text((6, top + 6), f"p99 ms panel {p}", fill=(255, 255, 255))
img.save(f"{OUT}/tall.png")
img = Image.open(f"{OUT}/tall.png").convert("RGB")

rh, rw = smart_resize(H, W)
assert (H - rh) > 2 * (W - rw), "the case must take Pillow 13's vertical-first path"
img.resize((rw, rh), Image.BICUBIC).save(f"{OUT}/tall_resized_pil13.png")
print("tall", (W, H), "->", (rw, rh), "Pillow", PIL.__version__)
