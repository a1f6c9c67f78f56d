"""Python side of crates/vlm/peer/llama-cpp.sh (issue 14: llama.cpp as a benchmark peer).

  llama_peer.py checkpoint OUT_DIR [2b|small] random Qwen3-VL-2B checkpoint, HF layout, bf16
  llama_peer.py convert LLAMA_SRC ARGS... convert_hf_to_gguf.py, tokenizer-hash check bypassed
  llama_peer.py table OURS.json LLAMA.log TIME_V_LLAMA TIME_V_OURS [more pairs ...]
  llama_peer.py agreement OURS.json KLD.log

The checkpoint has the shapes of Qwen/Qwen3-VL-2B-Instruct (its config.json, copied below) and
N(0, 0.02) weights with norm weights 1 (the rule of examples/common/mod.rs `RandomBackend`),
stored bf16; tensor names and shapes come from transformers' own model class built on the meta
device, so the file is what `save_pretrained` would write. The tokenizer is a stand-in: a small
byte-level BPE trained on the repository's text, padded to Qwen's 151,643 ordinary ids, with
Qwen's special tokens at their real ids (151,643-151,668) and Qwen3-VL's chat template; the
vocabulary (embedding rows) stays 151,936.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

CONFIG = {
    "architectures": ["Qwen3VLForConditionalGeneration"],
    "image_token_id": 151655,
    "model_type": "qwen3_vl",
    "text_config": {
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "dtype": "bfloat16",
        "eos_token_id": 151645,
        "head_dim": 128,
        "hidden_act": "silu",
        "hidden_size": 2048,
        "initializer_range": 0.02,
        "intermediate_size": 6144,
        "max_position_embeddings": 262144,
        "model_type": "qwen3_vl_text",
        "num_attention_heads": 16,
        "num_hidden_layers": 28,
        "num_key_value_heads": 8,
        "rms_norm_eps": 1e-06,
        "rope_scaling": {"mrope_interleaved": True, "mrope_section": [24, 20, 20], "rope_type": "default"},
        "rope_theta": 5000000,
        "tie_word_embeddings": True,
        "use_cache": True,
        "vocab_size": 151936,
    },
    "tie_word_embeddings": True,
    "transformers_version": "4.57.0.dev0",
    "video_token_id": 151656,
    "vision_config": {
        "deepstack_visual_indexes": [5, 11, 17],
        "depth": 24,
        "hidden_act": "gelu_pytorch_tanh",
        "hidden_size": 1024,
        "in_channels": 3,
        "initializer_range": 0.02,
        "intermediate_size": 4096,
        "model_type": "qwen3_vl",
        "num_heads": 16,
        "num_position_embeddings": 2304,
        "out_hidden_size": 2048,
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    },
    "vision_end_token_id": 151653,
    "vision_start_token_id": 151652,
}

PREPROCESSOR = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "do_rescale": True,
    "rescale_factor": 0.00392156862745098,
    "do_normalize": True,
    "do_resize": True,
    "do_convert_rgb": True,
    "image_processor_type": "Qwen2VLImageProcessorFast",
    "processor_class": "Qwen3VLProcessor",
}

# Qwen2.5 / Qwen3 added tokens at their real ids.
SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
]
FIRST_SPECIAL = 151643
# Qwen2's pre-tokenizer split (what llama.cpp's "qwen2" pre-tokenizer implements).
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def corpus() -> list[str]:
    """Text to train the stand-in BPE and to teacher-force: the repository's own docs."""
    files = sorted(REPO.glob("*.md")) + sorted((REPO / "crates").glob("*/README.md"))
    files += sorted((REPO / "crates" / "vlm").glob("*.md"))
    return [f.read_text(encoding="utf-8", errors="replace") for f in files if f.is_file()]


def write_tokenizer(out: Path) -> None:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=8000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(corpus(), trainer)
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    n = len(vocab)
    # pad the ordinary ids up to Qwen's first special id with never-produced fillers
    for i in range(n, FIRST_SPECIAL):
        vocab[f"filler{i}"] = i
    j["added_tokens"] = [
        {"id": FIRST_SPECIAL + k, "content": s, "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": True}
        for k, s in enumerate(SPECIALS)
    ]
    j["post_processor"] = None
    j["normalizer"] = {"type": "NFC"}
    (out / "tokenizer.json").write_text(json.dumps(j, ensure_ascii=False))
    template = (REPO / "crates/vlm/scripts/qwen3_vl_instruct.jinja").read_text()
    (out / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": False,
        "add_prefix_space": False,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "errors": "replace",
        "model_max_length": 262144,
        "tokenizer_class": "Qwen2Tokenizer",
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": False,
        "added_tokens_decoder": {
            str(FIRST_SPECIAL + k): {"content": s, "lstrip": False, "normalized": False,
                                     "rstrip": False, "single_word": False, "special": True}
            for k, s in enumerate(SPECIALS)
        },
        "chat_template": template,
    }, indent=1))
    (out / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    print(f"tokenizer: {n} trained + fillers to {FIRST_SPECIAL}, {len(SPECIALS)} specials", file=sys.stderr)


def bf16_bytes(a):
    """float32 array -> bf16 bytes, round to nearest even (as torch's .to(bfloat16))."""
    import numpy as np

    u = a.astype(np.float32).view(np.uint32)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16).tobytes()


# A small model with the same structure and the real vocabulary, to check the pipeline fast
# (and on a machine without ~15 GB of free disk); the figures that matter use "2b".
SMALL = {
    "text_config": {"hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 4,
                    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 64,
                    "rope_scaling": {"mrope_interleaved": True, "mrope_section": [12, 10, 10],
                                     "rope_type": "default"}},
    "vision_config": {"depth": 4, "hidden_size": 256, "intermediate_size": 1024, "num_heads": 4,
                      "out_hidden_size": 512, "deepstack_visual_indexes": [1, 2]},
}


def checkpoint(out: Path, shape: str = "2b", seed: int = 14) -> None:
    import numpy as np
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    out.mkdir(parents=True, exist_ok=True)
    config = json.loads(json.dumps(CONFIG))
    if shape == "small":
        for part, over in SMALL.items():
            config[part].update(over)
    elif shape != "2b":
        raise SystemExit(f"unknown shape {shape} (2b, small)")
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2))
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 151643, "eos_token_id": [151645, 151643], "pad_token_id": 151643}))
    write_tokenizer(out)
    cfg = Qwen3VLConfig.from_pretrained(out)
    with torch.device("meta"):
        model = Qwen3VLForConditionalGeneration(cfg)
    # save_pretrained's names (the checkpoint-conversion mapping reversed) and no tied head
    sd = model.state_dict()
    names = {}
    for k, v in sd.items():
        if k.startswith("lm_head") and cfg.tie_word_embeddings:
            continue
        hf = k
        if hf.startswith("model.") or hf.startswith("lm_head"):
            pass
        names[hf] = tuple(v.shape)
    header, offset = {}, 0
    for k in sorted(names):
        n = math.prod(names[k]) * 2
        header[k] = {"dtype": "BF16", "shape": list(names[k]), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    rng = np.random.default_rng(seed)
    path = out / "model.safetensors"
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for k in sorted(names):
            shape = names[k]
            if "norm" in k and k.endswith("weight"):
                a = np.ones(shape, np.float32)
            else:
                a = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
            f.write(bf16_bytes(a))
    print(f"{path}: {len(names)} tensors, {offset / 2**30:.2f} GiB bf16", file=sys.stderr)


def convert(src: Path, args: list[str]) -> None:
    """convert_hf_to_gguf.py with the tokenizer-hash check answered 'qwen2' (the stand-in
    tokenizer's hash is, by design, not one of the released models')."""
    sys.path.insert(0, str(src / "gguf-py"))
    sys.path.insert(0, str(src))
    import conversion.base as base

    for cls in vars(base).values():
        if isinstance(cls, type) and "get_vocab_base_pre" in vars(cls):
            cls.get_vocab_base_pre = lambda self, tokenizer: "qwen2"
    sys.argv = ["convert_hf_to_gguf.py", *args]
    import convert_hf_to_gguf

    convert_hf_to_gguf.main()


def parse_llama(log: str) -> dict:
    """Timings from llama-mtmd-cli's log (llama_perf lines and the image-encode line)."""
    out = {}
    # older mtmd-cli: one line per image slice; newer: the batched encode of all media
    m = re.search(r"(?:image slice encoded in|mtmd batch encoding done in)\s+([\d.]+)\s*ms", log)
    if m:
        out["vision_ms"] = float(m.group(1))
    # The batched encode (newer mtmd-cli) runs while the text before the image is still
    # queued on the context, which synchronises only after the image's embeddings: its
    # "prompt eval time" then spans the encode as well (checked on the log's timestamps:
    # prompt eval 42.0 s = encode 25.9 s + 16.1 s, ending 2.2 s of decode before the end).
    out["encode_in_prompt_eval"] = "mtmd batch encoding done" in log
    m = re.search(r"image decoded \(batch \d+/\d+\) in\s+([\d.]+)\s*ms", log)
    if m:
        out["image_decode_ms"] = float(m.group(1))
    m = re.search(r"prompt eval time =\s+([\d.]+) ms /\s+(\d+) tokens", log)
    if m:
        out["prompt_eval_ms"], out["prompt_eval_tokens"] = float(m.group(1)), int(m.group(2))
    m = re.search(r"(?<!prompt )eval time =\s+([\d.]+) ms /\s+(\d+) runs", log)
    if m:
        ms, runs = float(m.group(1)), int(m.group(2))
        out["decode_tokens"] = runs
        out["decode_tokens_per_s"] = runs / (ms / 1e3) if ms else float("nan")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log)
    if m:
        out["peak_rss_mb"] = int(m.group(1)) / 1024
    u = re.search(r"User time \(seconds\): ([\d.]+)", log)
    s = re.search(r"System time \(seconds\): ([\d.]+)", log)
    if u and s:
        out["cpu_s_total"] = float(u.group(1)) + float(s.group(1))
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", log)
    if m:
        parts = [float(p) for p in m.group(1).split(":")]
        out["wall_s"] = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    # image tokens in the prompt eval: llama.cpp's prefill is the image batch(es) + the text
    n = re.search(r"encoding image slice\.\.\.|encoding mtmd batch", log)
    out["has_image"] = bool(n)
    return out


def table(args: list[str]) -> None:
    """One row per engine per pair, then the ratios. llama.cpp: vision = the image slice
    encode, prefill = "prompt eval time" (image and text tokens), CPU-s per decoded token
    = threads x eval wall time / tokens (its workers spin between ops, so they burn CPU for
    the whole step: what the issue's table used). Peak RSS: /usr/bin/time -v for both."""
    threads = int(os.environ.get("THREADS", "2"))
    print("| pair | engine | load avg (1 min, start→end) | vision | prefill | time to first token | decode | peak RSS | CPU-s per decoded token |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i in range(0, len(args), 2):
        n = i // 2 + 1
        ours = json.loads(Path(args[i]).read_text())
        llama_log = Path(args[i + 1]).read_text(errors="replace")
        lp = parse_llama(llama_log)
        la = re.findall(r"load_avg_(?:start|end): ([\d.]+)", llama_log)
        l_vis = lp.get("vision_ms", float("nan")) / 1e3
        # llama_decode counts the image embeddings' batches in "prompt eval" (n_tokens > 1),
        # so that line is the whole prefill, image and text tokens; with the batched encode
        # it holds the encode too (see parse_llama), and is then the time to first token.
        l_pe = lp.get("prompt_eval_ms", float("nan")) / 1e3
        if lp.get("encode_in_prompt_eval"):
            l_pre, l_ttft = l_pe - l_vis, l_pe
        else:
            l_pre, l_ttft = l_pe, l_vis + l_pe
        l_dec = lp.get("decode_tokens_per_s", float("nan"))
        l_cpu_tok = threads / l_dec
        l_rss = lp.get("peak_rss_mb", float("nan"))
        o_time = Path(args[i]).with_suffix(".time")
        o_rss = ours["peak_rss_mb"]
        if o_time.exists():
            o_rss = parse_llama(o_time.read_text()).get("peak_rss_mb", o_rss)
        o_vis, o_pre = ours["vision_ms"] / 1e3, ours["prefill_ms"] / 1e3
        o_ttft, o_dec = ours["time_to_first_token_ms"] / 1e3, ours["decode_tokens_per_s"]
        o_cpu_tok = ours["cpu_s"]["decode_per_token"]
        print(f"| {n} | llama.cpp (`llama-mtmd-cli -t {threads}`), prompt {lp.get('prompt_eval_tokens', '?')} tok | {'→'.join(la)} | {l_vis:.1f} s | {l_pre:.1f} s | {l_ttft:.1f} s | {l_dec:.2f} tok/s | {l_rss:,.0f} MiB | ≈{l_cpu_tok:.3f} |")
        print(f"| {n} | OpsLens (`llama_peer bench --mode q4k`), prompt {ours['prompt_tokens']} tok, {ours['image_tokens']} image | {ours['load_avg_start'].split()[0]}→{ours['load_avg_end'].split()[0]} | {o_vis:.1f} s | {o_pre:.1f} s | {o_ttft:.1f} s | {o_dec:.2f} tok/s | {o_rss:,.0f} MiB | {o_cpu_tok:.3f} |")
        print(f"| {n} | **llama.cpp / OpsLens** (time; decode: OpsLens / llama.cpp) | | {l_vis / o_vis:.2f}× | {l_pre / o_pre:.2f}× | {l_ttft / o_ttft:.2f}× | {o_dec / l_dec:.2f}× | {o_rss / l_rss:.2f} (ours / theirs) | {o_cpu_tok / l_cpu_tok:.2f} (ours / theirs) |")


def agreement(args: list[str]) -> None:
    ours = json.loads(Path(args[0]).read_text())
    log = Path(args[1]).read_text(errors="replace")
    same = re.search(r"Same top p:\s+([\d.]+)\s*±\s*([\d.]+)\s*%", log)
    kld = re.search(r"Mean\s+KLD:\s+([-\d.]+)\s*±\s*([\d.]+)", log)
    print("| engine | quantized vs reference | positions | same top-1 | mean KL (nats) |")
    print("|---|---|---|---|---|")
    print(f"| OpsLens | {ours['mode']} vs our f32 | {ours['positions']} | {100 * ours['same_top1']:.2f} % | {ours['mean_kl']:.6f} ± {ours['kl_std_err']:.6f} |")
    print(f"| llama.cpp | Q4_K_M vs its F16 GGUF | see log | {same.group(1) + ' ± ' + same.group(2) + ' %' if same else '?'} | {kld.group(1) + ' ± ' + kld.group(2) if kld else '?'} |")


def main() -> None:
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "checkpoint":
        checkpoint(Path(rest[0]), rest[1] if len(rest) > 1 else "2b")
    elif cmd == "convert":
        convert(Path(rest[0]), rest[1:])
    elif cmd == "table":
        table(rest)
    elif cmd == "agreement":
        agreement(rest)
    elif cmd == "corpus":
        Path(rest[0]).write_text("\n\n".join(corpus()))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
