#!/usr/bin/env python3
"""Tokens and decode time per analysis, long form (the first prompt) against compact form (the
prompt now), counted with Qwen's own BPE vocabulary (the 151,643 ranks Qwen2/2.5/3 and
Qwen3-VL share; shipped as qwen.tiktoken inside the `dashscope` wheel on PyPI) and tiktoken.

    pip download dashscope==2.0.2 --no-deps -d /tmp/ds && unzip -o -q /tmp/ds/*.whl -d /tmp/ds
    pip install tiktoken
    python3 crates/core/testdata/answers/measure.py /tmp/ds/dashscope/resources/qwen.tiktoken

Times use the rates measured for the q4k default on the 2-vCPU build machine (issue 14:
decode 7.5 tok/s, prefill 16.3-18.2 s for 770 tokens, so ~22 ms per prompt token).
"""
import base64, json, pathlib, re, sys

import tiktoken

PAT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
DECODE_TOK_S = 7.5
PREFILL_S_PER_TOKEN = 17.2 / 770

here = pathlib.Path(__file__).resolve().parent
ranks = {
    base64.b64decode(t): int(r)
    for t, r in (l.split() for l in pathlib.Path(sys.argv[1]).read_bytes().splitlines() if l)
}
enc = tiktoken.Encoding("qwen", pat_str=PAT, mergeable_ranks=ranks, special_tokens={})
n = lambda s: len(enc.encode(s))

prompts_rs = (here / "../../src/analysis/prompts.rs").read_text()
compact_prompt = re.search(r'pub const ANALYZE: &str = r#"(.*?)"#;', prompts_rs, re.S).group(1)
long_prompt = (here / "prompt.long.txt").read_text()
p_long, p_compact = n(long_prompt), n(compact_prompt)
print(f"prompt text: {p_long} -> {p_compact} tokens "
      f"(prefill {(p_compact - p_long) * PREFILL_S_PER_TOKEN:+.1f} s)")

pictures = {
    "cpu-panel": "panel.png, wide.png, big.png",
    "p99-panels": "tall.png",
    "six-panels": "examples/common dashboard(1280, 720), the bench picture",
    "checkout-incident": "(no picture: a typical incident dashboard with times and errors)",
}
print("| answer | pictures | long form: tokens (minified) | compact | saved | decode time long -> compact |")
print("|---|---|---|---|---|---|")
for case, pics in pictures.items():
    long = (here / f"{case}.long.json").read_text()
    compact = (here / f"{case}.compact.json").read_text().strip()
    # The long form also pays for the stop token <|im_end|>; the compact run ends on its
    # closing brace (the JSON-end stop).
    a = n(long) + 1
    a_min = n(json.dumps(json.loads(long), separators=(",", ":"), ensure_ascii=False)) + 1
    b = n(compact)
    print(f"| {case} | {pics} | {a} ({a_min}) | {b} | {1 - b / a:.0%} ({1 - b / a_min:.0%}) | "
          f"{a / DECODE_TOK_S:.1f} s -> {b / DECODE_TOK_S:.1f} s |")
