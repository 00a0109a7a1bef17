#!/usr/bin/env python3
"""Chat load test on loopback: 1, 4 and 16 concurrent chats (by default) against one `medgemma-x serve`,
each answer a fixed number of tokens (min_new_tokens = max_new_tokens), and prints per level the
time to first token (p50 / max: the server's queue wait + prompt time of each answer, as its `done` event
reports them — the first *text* can come later when the first tokens are partial characters) and the
aggregate throughput (all answers' tokens / wall time of the level, prompts included), with the ratio to
one stream.

With --worker-sets, one server per set of inference workers (e.g. `cpu/cpu,cpu`: one CPU worker, then
two), and the levels side by side.

Usage: .venv/bin/python scripts/bench_chat.py [--model-dir DIR] [--levels 1,4,16] [--tokens 64]
       [--binary target/release/medgemma-x] [--worker-sets auto]
Default model: the tiny random test model (target/fixtures/tiny-a, made by scripts/test.sh): that measures
the server and scheduler, not the network; pass a full-size checkpoint for real numbers.
"""
import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from loopback import Session, add_user, free_port, upload_film

ROOT = Path(__file__).resolve().parent.parent


def get_json(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.load(r)


def chat(port, session, study, tokens, seed, out):
    """One streamed answer; appends (started, first token ms as the server saw it, ended, tokens) to out."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    body = json.dumps({"message": "请用放射科报告语言描述这张胸片。", "max_new_tokens": tokens,
                       "min_new_tokens": tokens, "temperature": 1.0, "seed": seed, "context": False})
    started = time.perf_counter()
    conn.request("POST", f"/api/v1/studies/{study}/chat", body,
                 {"Content-Type": "application/json", **session.headers(post=True)})
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {response.read()[:200]!r}")
    event, done = None, None
    while True:
        line = response.readline()
        if not line:
            break
        line = line.decode().rstrip("\r\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event in ("done", "error"):
            done = json.loads(line[5:])
            if event == "error":
                raise RuntimeError(f"error event: {done}")
            break
    ended = time.perf_counter()
    conn.close()
    t = done["timings"]
    out.append((started, t["queued_ms"] + t["prefill_ms"], ended, done["answer_tokens"], done["prompt_tokens"]))


def level(port, session, study, streams, tokens):
    results, threads = [], []
    for i in range(streams):
        t = threading.Thread(target=chat, args=(port, session, study, tokens, i, results))
        threads.append(t)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(results) != streams:
        raise RuntimeError(f"{streams - len(results)} of {streams} chats failed")
    wall = max(r[2] for r in results) - min(r[0] for r in results)
    ttft = sorted(r[1] for r in results)
    total = sum(r[3] for r in results)
    return {"prompt_tokens": results[0][4], "streams": streams, "ttft_p50_ms": statistics.median(ttft), "ttft_max_ms": ttft[-1],
            "tokens": total, "wall_s": wall, "tokens_per_s": total / wall}


def serve_and_measure(args, levels, devices):
    """Starts a server with these inference workers, measures every level, stops it."""
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        add_user(args.binary, data)
        server = subprocess.Popen(
            [args.binary, "serve", "--bind", f"127.0.0.1:{port}", "--data-dir", data, "--model-dir", args.model_dir,
             "--log-format", "json", "--chat-max-active", str(max(levels)), "--chat-max-waiting", "64",
             "--chat-max-per-client", str(max(levels)), "--inference-devices", devices, "--pre-read", "false"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 600
            while True:
                try:
                    model = get_json(port, "/readyz")["model"]
                    if model["loaded"] and all(w["state"] == "ready" for w in model["workers"]):
                        break
                    if "失败" in model["state"]:
                        sys.exit(f"model failed to load: {model['state']}")
                except OSError:
                    pass
                if time.time() > deadline:
                    sys.exit("the model did not load within 10 minutes")
                time.sleep(0.2)
            workers = ", ".join(f"{w['place']} ({w['device']})" for w in model["workers"])
            print(f"model: {model['name']} (test model: {model['test_model']}); workers: {workers}; "
                  f"{args.tokens} tokens per answer")
            session = Session(f"http://127.0.0.1:{port}")
            study = upload_film(session, ROOT / "target/fixtures/dicom/synthetic/cxr.jpg", "BENCH-1")
            level(port, session, study, 1, 8)  # warm-up
            return [level(port, session, study, n, args.tokens) for n in levels]
        finally:
            server.terminate()
            server.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(ROOT / "target/release/medgemma-x"))
    ap.add_argument("--model-dir", default=str(ROOT / "target/fixtures/tiny-a"))
    ap.add_argument("--levels", default="1,4,16")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--worker-sets", default="auto",
                    help="slash-separated sets of --inference-devices, one server each, e.g. cpu/cpu,cpu")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    sets = args.worker_sets.split("/")
    results = {devices: serve_and_measure(args, levels, devices) for devices in sets}
    first = results[sets[0]]
    print(f"prompt: {first[0]['prompt_tokens']} tokens (system prompt, question, image) per answer")
    base = first[0]["tokens_per_s"]
    print(f"{'workers':>10} {'streams':>7} {'TTFT p50 ms':>12} {'TTFT max ms':>12} {'tokens':>7} {'wall s':>7} "
          f"{'tok/s':>8} {'× 1 stream':>10}")
    for devices in sets:
        for r in results[devices]:
            print(f"{devices:>10} {r['streams']:>7} {r['ttft_p50_ms']:>12.0f} {r['ttft_max_ms']:>12.0f} "
                  f"{r['tokens']:>7} {r['wall_s']:>7.2f} {r['tokens_per_s']:>8.1f} {r['tokens_per_s'] / base:>10.2f}")
    if len(sets) > 1:
        for r0, *rest in zip(*(results[d] for d in sets)):
            ratios = ", ".join(f"{d}: {r['tokens_per_s'] / r0['tokens_per_s']:.2f}×" for d, r in zip(sets[1:], rest))
            print(f"{r0['streams']} streams, aggregate tok/s against {sets[0]}: {ratios}")


if __name__ == "__main__":
    main()
