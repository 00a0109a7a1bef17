#!/usr/bin/env python3
"""The real google/gemma-3-270m on this CPU: our engine from the Q4_K_M GGUF file in f32, bf16 and int8
weights, against transformers (f32 and bf16, the same weights dequantized, from the converted folder) —
prefill time of a Chinese radiology prompt, decode tokens/s, load time and peak resident memory, same
thread count, greedy, fixed answer length.

Usage: .venv/bin/python scripts/bench_real_gemma3.py [BINARY]   (default target/release/medgemma-x)
Needs target/real-models (models/tests/fixtures/make_gemma3_270m.py; scripts/test.sh makes it).
"""
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
BINARY = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/release/medgemma-x")
MODELS = ROOT / "target/real-models"
GGUF = MODELS / "gemma3-270m-gguf/gemma-3-270m-q4_k_m.gguf"
HF = MODELS / "gemma3-270m-hf"
NEW_TOKENS = 64
PROMPT = (ROOT / "models/tests/fixtures/radiology_zh.txt").read_text() + "\n请根据以上报告，总结主要异常所见："
THREADS = torch.get_num_threads()


def run_child(args):
    """Runs `args`; (stdout, peak resident MiB of that process alone, from wait4's rusage)."""
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{args[:4]}… exited {child.returncode}")
    return stdout, usage.ru_maxrss / 1024


def ours(mode):
    """Best of three runs of `generate --json`, each in a fresh process; the largest peak RSS of the three."""
    args = [BINARY, "generate", "--model-dir", str(GGUF), "--prompt", PROMPT, "--device", "cpu",
            "--max-new-tokens", str(NEW_TOKENS + 1), "--min-new-tokens", str(NEW_TOKENS + 1), "--json"]
    args += {"f32": ["--dtype", "f32"], "bf16": ["--dtype", "bf16"], "int8": ["--dtype", "f32", "--quantize", "int8"]}[mode]
    best, peak_mib = None, 0.0
    for _ in range(3):
        stdout, peak = run_child(args)
        peak_mib = max(peak_mib, peak)
        result = json.loads(stdout.strip().splitlines()[-1])
        t = result["timings"]
        row = (len(result["prompt_token_ids"]), t["prefill_ms"], t["decode_tokens_per_s"], t["load_ms"])
        best = row if best is None or row[2] > best[2] else best
    return (*best, peak_mib)


def transformers(dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(HF, dtype=dtype).eval()
    load_ms = (time.perf_counter() - started) * 1000
    tokenizer = AutoTokenizer.from_pretrained(HF)
    text = f"<bos><start_of_turn>user\n{PROMPT.strip()}<end_of_turn>\n<start_of_turn>model\n"
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])

    def run(new_tokens):
        start = time.perf_counter()
        with torch.no_grad():
            model.generate(input_ids=ids, do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
        return time.perf_counter() - start

    run(2)
    prefill = min(run(1) for _ in range(3))
    full = min(run(NEW_TOKENS + 1) for _ in range(2))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return ids.shape[1], prefill * 1000, NEW_TOKENS / (full - prefill), load_ms, peak_mib


def main():
    print(f"gemma-3-270m, {THREADS} threads, {NEW_TOKENS} new tokens, greedy")
    print(f"{'engine':<34}{'prompt':>7}{'prefill ms':>12}{'decode tok/s':>14}{'load ms':>10}{'peak RSS MiB':>14}")
    rows = {}
    for mode in ("f32", "bf16", "int8"):
        rows[f"ours {mode} (GGUF)"] = ours(mode)
        print(f"{'ours ' + mode + ' (GGUF file)':<34}" + fmt(rows[f'ours {mode} (GGUF)']), flush=True)
    # transformers last: its peak RSS is this process's own, which only grows.
    for name, dtype in (("transformers f32", torch.float32), ("transformers bf16", torch.bfloat16)):
        rows[name] = transformers(dtype)
        print(f"{name + ' (HF folder)':<34}" + fmt(rows[name]), flush=True)
    for mode in ("f32", "bf16", "int8"):
        ratio = rows[f"ours {mode} (GGUF)"][2] / rows["transformers f32"][2]
        print(f"decode ours {mode} / transformers f32: {ratio:.2f}×")
    print(f"decode ours int8 / ours f32: {rows['ours int8 (GGUF)'][2] / rows['ours f32 (GGUF)'][2]:.2f}×")


def fmt(row):
    prompt, prefill, decode, load, peak = row
    return f"{prompt:>7}{prefill:>12.0f}{decode:>14.1f}{load:>10.0f}{peak:>14.0f}"


if __name__ == "__main__":
    main()
