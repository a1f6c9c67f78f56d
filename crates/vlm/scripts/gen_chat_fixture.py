"""Give the tiny Qwen3-VL fixture its chat template and record how transformers renders it.

Run from the repository root in a throwaway venv (never needed by tests or CI):
    python -m venv /tmp/venv-tpl && /tmp/venv-tpl/bin/pip install "transformers==4.57.6" jinja2
    /tmp/venv-tpl/bin/python crates/vlm/scripts/gen_chat_fixture.py crates/vlm/scripts/qwen3_vl_instruct.jinja

Writes models/test/tiny-qwen3-vl/chat_template.json (the template, as Qwen3-VL checkpoints
ship it) and expected_chat.json: for each case, the messages and flags, the text transformers'
apply_chat_template renders (jinja2, trim_blocks, lstrip_blocks) and the token ids of that text.
crates/vlm/tests/parity.rs renders the same cases with the Rust port (minijinja) and compares.
"""
import json
import sys

import transformers
from transformers import PreTrainedTokenizerFast

assert transformers.__version__.startswith("4.57."), transformers.__version__
OUT = "models/test/tiny-qwen3-vl"
template = open(sys.argv[1], encoding="utf-8").read()
tok = PreTrainedTokenizerFast(tokenizer_file=f"{OUT}/tokenizer.json")


def img():
    return {"type": "image"}


def text(t):
    return {"type": "text", "text": t}


CASES = [
    ("one image", [{"role": "user", "content": [img(), text("What spiked on this dashboard?")]}], True, False),
    ("system and image", [
        {"role": "system", "content": [text("You are a helpful assistant.")]},
        {"role": "user", "content": [img(), text("What spiked on this dashboard?")]},
    ], True, False),
    ("text only", [{"role": "user", "content": [text("Summarise: error 502 Bad Gateway at 14:05")]}], True, False),
    ("two images numbered", [{"role": "user", "content": [img(), img(), text("What changed between them?")]}], True, True),
    ("non-ascii", [{"role": "user", "content": [img(), text("Latenz über 2 s — 東京 p99?")]}], True, False),
    ("multi-turn", [
        {"role": "user", "content": [img(), text("What spiked?")]},
        {"role": "assistant", "content": [text("CPU usage spiked to 97% at 14:05")]},
        {"role": "user", "content": [text("When?")]},
    ], True, False),
    ("no generation prompt", [{"role": "user", "content": [text("p99 latency ms")]}], False, False),
]

out = []
for name, messages, gen, vision_id in CASES:
    rendered = tok.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=gen, add_vision_id=vision_id
    )
    ids = tok(rendered, add_special_tokens=False).input_ids
    out.append({"name": name, "messages": messages, "add_generation_prompt": gen,
                "add_vision_id": vision_id, "text": rendered, "input_ids": ids})

with open(f"{OUT}/chat_template.json", "w", encoding="utf-8") as f:
    json.dump({"chat_template": template}, f, indent=2, ensure_ascii=False)
    f.write("\n")
with open(f"{OUT}/expected_chat.json", "w", encoding="utf-8") as f:
    json.dump({"transformers": transformers.__version__, "cases": out}, f, indent=1, ensure_ascii=False)
    f.write("\n")
print(f"{len(out)} cases written")
