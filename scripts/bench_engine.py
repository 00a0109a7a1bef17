#!/usr/bin/env python3
"""Decode speed and prefill time of our engine against transformers on this CPU: same random ~100M
parameter Gemma 3 checkpoint (f32), same prompt (one image + Chinese text), greedy, same thread count.

Usage: .venv/bin/python scripts/bench_engine.py [BINARY]   (default target/release/medgemma-x)
Writes the checkpoint to target/bench/gemma3-100m once; prints one line per engine and the ratio.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "models/tests/fixtures"))
sys.path.insert(0, str(ROOT / "scripts"))
import make_bench_gemma3  # noqa: E402
import make_tiny_gemma3 as tiny  # noqa: E402
from transformers import Gemma3Config, Gemma3ForConditionalGeneration  # noqa: E402

BINARY = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/release/medgemma-x")
OUT = ROOT / "target/bench/gemma3-100m"
NEW_TOKENS = 64
SYSTEM = "你是放射科医生的助手。"
PROMPT = "请用放射科报告语言描述这张胸片的主要所见，包括部位、形态、密度、边界和邻近结构。"
THREADS = torch.get_num_threads()


def bench_transformers(dtype):
    model = Gemma3ForConditionalGeneration.from_pretrained(OUT, dtype=dtype).eval()
    messages = [{"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
                {"role": "user", "content": [{"type": "text", "text": PROMPT}, {"type": "image"}]}]
    text = tiny.render_prompt(messages, 64)
    ids = torch.tensor([tiny.make_tokenizer().encode(text, add_special_tokens=False).ids])
    processor = tiny.Gemma3ImageProcessorPil(size={"height": 224, "width": 224}, resample=2, image_mean=[0.5] * 3,
                                             image_std=[0.5] * 3)
    pixels = processor([Image.open(OUT / "image.png").convert("RGB")], return_tensors="pt")["pixel_values"]
    inputs = dict(input_ids=ids, pixel_values=pixels, token_type_ids=(ids == tiny.SPECIALS["<image_soft_token>"]).long())

    def run(new_tokens):
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(**inputs, do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
        assert out.shape[1] == ids.shape[1] + new_tokens
        return time.perf_counter() - start

    run(2)  # warm-up
    prefill = min(run(1) for _ in range(3))
    full = min(run(NEW_TOKENS + 1) for _ in range(2))
    return ids.shape[1], prefill * 1000, NEW_TOKENS / (full - prefill)


def bench_ours(dtype):
    best = None
    for _ in range(3):
        out = subprocess.run([BINARY, "generate", "--model-dir", str(OUT), "--system", SYSTEM, "--prompt", PROMPT,
                              "--image", str(OUT / "image.png"), "--max-new-tokens", str(NEW_TOKENS + 1),
                              "--device", "cpu", "--dtype", dtype, "--json"],
                             check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        if result["stop"] != "max_tokens":
            sys.exit(f"our run stopped early ({result['stop']}); pick another seed")
        t = result["timings"]
        if best is None or t["decode_tokens_per_s"] > best[2]:
            best = (len(result["prompt_token_ids"]), t["prefill_ms"], t["decode_tokens_per_s"], t["load_ms"])
    return best


make_bench_gemma3.make(OUT, "100m")
params = sum(p.numel() for p in Gemma3ForConditionalGeneration.from_pretrained(OUT).parameters())
results = {}
for name, torch_dtype in (("f32", torch.float32), ("bf16", torch.bfloat16)):
    tokens, hf_prefill, hf_decode = bench_transformers(torch_dtype)
    our_tokens, our_prefill, our_decode, our_load = bench_ours(name)
    assert tokens == our_tokens, (tokens, our_tokens)
    results[name] = (hf_prefill, hf_decode, our_prefill, our_decode)
print(f"checkpoint: {OUT} ({params / 1e6:.0f}M parameters, stored f32), prompt {tokens} tokens incl. 64 image "
      f"tokens, {NEW_TOKENS} decoded tokens, {THREADS} CPU threads, torch {torch.__version__}")
for name, (hf_prefill, hf_decode, our_prefill, our_decode) in results.items():
    print(f"{name:>4}: transformers prefill {hf_prefill:6.0f} ms, decode {hf_decode:6.1f} tok/s | "
          f"medgemma-x prefill {our_prefill:6.0f} ms, decode {our_decode:6.1f} tok/s | "
          f"decode ratio {our_decode / hf_decode:.2f}x, prefill time ratio {our_prefill / hf_prefill:.2f}x")
hf_f32_decode, our_bf16_decode = results["f32"][1], results["bf16"][3]
print(f"medgemma-x bf16 vs transformers f32 (its CPU default): decode {our_bf16_decode / hf_f32_decode:.2f}x")
