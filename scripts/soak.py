#!/usr/bin/env python3
"""Soak test on loopback: several clients upload, list, render, fetch raw values, measure nodules, chat
(streamed to the end, sometimes with the study's history as context, sometimes a schema-constrained report
draft), read chat history, and write, sign and export reports (PDF, HL7, FHIR) against one `medgemma-x serve`
for a bounded time, then print requests served, errors (goal 0), p50/p99 latency per kind of request, and the
server's memory growth (RSS at the end of the first minute → end).
Usage: .venv/bin/python scripts/soak.py [SECONDS=600] [CLIENTS=4] [IMAGE_CACHE_MB=512] [BINARY=target/release/medgemma-x]
The decoded-image cache fills up to IMAGE_CACHE_MB during the run; RSS growth beyond that is a leak.
Chat runs on MEDGEMMA_X_MODEL_DIR (default: the tiny random test model, target/fixtures/tiny-a).
Pre-reads are on (the server's default): every upload queues one. Before the clients start, the soak times an
interactive question's first token with no pre-read waiting, then again while PRE_READS (default 50) studies
that just arrived wait for theirs, and prints both (goal: unchanged).
Needs the fixtures (target/fixtures, made by scripts/test.sh).
"""
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from loopback import Session, add_user, free_port, multipart

ROOT = Path(__file__).resolve().parent.parent
SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 600
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
IMAGE_CACHE_MB = int(sys.argv[3]) if len(sys.argv) > 3 else 512
BINARY = sys.argv[4] if len(sys.argv) > 4 else str(ROOT / "target/release/medgemma-x")
FIXTURES = ROOT / "target/fixtures/dicom"
MODEL_DIR = os.environ.get("MEDGEMMA_X_MODEL_DIR", str(ROOT / "target/fixtures/tiny-a"))
UPLOADS = [FIXTURES / "synthetic/ct_phantom.dcm", FIXTURES / "synthetic/cr_monochrome1.dcm",
           FIXTURES / "synthetic/cxr.jpg", FIXTURES / "pydicom/CT_small.dcm", FIXTURES / "pydicom/MR_small_RLE.dcm",
           FIXTURES / "pydicom/JPGExtended.dcm", FIXTURES / "pydicom/SC_rgb_jpeg_gdcm.dcm"]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = {}
        self.errors = []

    def add(self, kind, seconds, error=None):
        with self.lock:
            self.latency.setdefault(kind, []).append(seconds)
            if error:
                self.errors.append(f"{kind}: {error}")


def chat(session, study, body, first_token=None):
    """One streamed answer, read to its `done` event; an `error` event is an error. `first_token`, a list,
    gets the seconds from the request to the first `token` event."""
    req = urllib.request.Request(f"{session.base}/api/v1/studies/{study}/chat", data=json.dumps(body).encode(),
                                 method="POST", headers=session.headers(post=True))
    req.add_header("Content-Type", "application/json")
    event = None
    sent = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        for raw in r:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
                if event == "token" and first_token is not None and len(first_token) == 0:
                    first_token.append(time.perf_counter() - sent)
            elif line.startswith("data:") and event == "error":
                raise RuntimeError(f"chat error event: {line[5:200]}")
            elif line.startswith("data:") and event == "done":
                return json.loads(line[5:])
    raise RuntimeError("chat stream ended without a done event")


def client(base, stats, deadline, seed):
    rng = random.Random(seed)
    session = Session(base)  # each client signs in once, as each radiologist's browser does
    request = session.request
    blobs = [(p.name, p.read_bytes()) for p in UPLOADS]
    instances, studies = [], []
    kinds = ["upload", "list", "render", "values", "nodule", "metadata", "chat", "chat", "draft", "history", "report"]
    # Each client writes reports on its own films only (the JPEG copies are new studies each time; the
    # DICOM files are shared between clients as duplicates, and one study has one report).
    own_films, reported = [], set()
    while time.time() < deadline:
        kind = rng.choice(kinds if instances else ["upload"])
        start = time.perf_counter()
        error = None
        try:
            if kind == "upload":
                # Two files: DICOMs come back as duplicates after their first upload (part of the mix); the
                # JPEG gets bytes after its end marker, so each copy is a new study and storage keeps growing.
                picked = [(n, b + rng.randbytes(8) if n.endswith(".jpg") else b) for n, b in rng.sample(blobs, 2)]
                body, ctype = multipart(picked, {"patient_id": f"SOAK{seed}", "exam_date": "2025-10-15"})
                result = json.loads(request("/api/v1/uploads", body, ctype))
                instances += [f["instance_id"] for f in result["files"] if "instance_id" in f]
                studies += [f["study_id"] for f in result["files"] if "study_id" in f]
                own_films += [f["study_id"] for f in result["files"] if f["name"].endswith(".jpg") and f["status"] == "stored"]
            elif kind == "list":
                request("/api/v1/studies?limit=20")
            elif kind == "render":
                request(f"/api/v1/instances/{rng.choice(instances)}/frames/1/image.png?max_side=512")
            elif kind == "values":
                request(f"/api/v1/instances/{rng.choice(instances)}/frames/1/values")
            elif kind == "metadata":
                request(f"/api/v1/instances/{rng.choice(instances)}")
            elif kind == "nodule":
                # Any click: a measurement or a clear 4xx (no nodule there, no spacing, colour image).
                body = json.dumps({"x": rng.uniform(0, 60), "y": rng.uniform(0, 60)}).encode()
                request(f"/api/v1/instances/{rng.choice(instances)}/frames/1/nodule", body, "application/json",
                        expect=(200, 400, 422))
            elif kind == "chat":
                chat(session, rng.choice(studies), {"message": "请描述这张胸片", "max_new_tokens": 32, "temperature": 1.0,
                                                 "seed": rng.randrange(1000), "context": rng.random() < 0.3})
            elif kind == "draft":
                chat(session, rng.choice(studies), {"message": "生成结构化报告", "mode": "report_draft", "temperature": 1.0,
                                                 "seed": rng.randrange(1000), "context": False})
            elif kind == "history":
                request(f"/api/v1/studies/{rng.choice(studies)}/chat")
            elif kind == "report":
                if not own_films:
                    continue  # nothing of its own to report on yet; not a request
                # A film's report: written and signed once, then exported in every format.
                study = rng.choice(own_films)
                if study not in reported:
                    body = json.dumps({"report": {"exam_id": "-", "report_summary": "两肺纹理清晰，未见明确结节。",
                                                  "recommendation": "年度随访。"}}).encode()
                    created = json.loads(request(f"/api/v1/studies/{study}/reports", body, "application/json",
                                                 expect=(201,)))
                    request(f"/api/v1/reports/{created['id']}/sign", b"{}", "application/json")
                    reported.add(study)
                report_id = json.loads(request(f"/api/v1/studies/{study}/reports"))[0]["id"]
                request(f"/api/v1/reports/{report_id}/export?format={rng.choice(['pdf', 'hl7', 'fhir', 'json'])}")
        except Exception as e:  # noqa: BLE001 — every failure is counted and shown
            error = str(e)
        stats.add(kind, time.perf_counter() - start, error)


def ttft_ms(session, study, count=20):
    """p50 and p99 of an interactive question's time to first token, asked `count` times in a row."""
    times, server = [], []
    for n in range(count):
        first = []
        # Without the study's conversation as context: every question is the same prompt, so the two runs
        # compare like with like (with it, each answer would lengthen the next prompt).
        done = chat(session, study, {"message": "请描述这张胸片", "max_new_tokens": 4, "seed": n, "context": False}, first)
        times.append(first[0] * 1000)
        t = done["timings"]
        server.append((t["queued_ms"], t["prefill_ms"], t["time_to_first_token_ms"], done["prompt_tokens"]))
    times.sort()
    print("  server side, median queued / prefill / first token ms / prompt tokens:",
          " / ".join(f"{statistics.median(v):.0f}" for v in zip(*server)))
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def pre_read_states(session):
    studies = json.loads(session.request("/api/v1/studies?limit=500"))["studies"]
    states = {}
    for s in studies:
        states[s.get("pre_read")] = states.get(s.get("pre_read"), 0) + 1
    return states


def interactive_while_pre_reads_wait(base, count):
    """Time to first token with no pre-read waiting, then with `count` arrived studies waiting for theirs."""
    session = Session(base)
    film = (FIXTURES / "synthetic/cxr.jpg").read_bytes()

    def arrive(n, tag):
        body, ctype = multipart([(f"{tag}{n}.jpg", film + tag.encode() + n.to_bytes(4, "big"))],
                                {"patient_id": f"{tag}{n}", "exam_date": "2025-10-15"})
        return json.loads(session.request("/api/v1/uploads", body, ctype))["files"][0]["study_id"]

    study = arrive(0, "TTFT")
    while pre_read_states(session).get("queued", 0) + pre_read_states(session).get("running", 0):
        time.sleep(0.5)  # the probe study's own pre-read done: nothing waits
    idle = ttft_ms(session, study)
    for n in range(count):
        arrive(n, "PRE")
    waiting = pre_read_states(session)
    busy = ttft_ms(session, study)
    after = pre_read_states(session)
    print(f"time to first token, p50/p99 ms: {idle[0]:.0f}/{idle[1]:.0f} with no pre-read waiting, "
          f"{busy[0]:.0f}/{busy[1]:.0f} with {count} arrived studies' pre-reads waiting "
          f"(pre-reads before: {waiting}, after: {after}); p50 ratio {busy[0] / idle[0]:.2f}")


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        add_user(BINARY, data)
        server = subprocess.Popen([BINARY, "serve", "--data-dir", data, "--bind", f"127.0.0.1:{port}",
                                   "--log-format", "json", "--image-cache-mb", str(IMAGE_CACHE_MB), "--model-dir", MODEL_DIR],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        for _ in range(3000):  # a real checkpoint takes a while to load
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=5) as r:
                    loaded = json.load(r)["model"]["loaded"]
                if loaded:
                    break
            except Exception:  # noqa: BLE001
                pass
            time.sleep(0.1)
        pre_reads = int(os.environ.get("PRE_READS", "50"))
        if pre_reads:
            interactive_while_pre_reads_wait(base, pre_reads)
        stats = Stats()
        deadline = time.time() + SECONDS
        threads = [threading.Thread(target=client, args=(base, stats, deadline, i)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(min(60, SECONDS / 4))
        rss_warm = rss_kb(server.pid)
        for t in threads:
            t.join()
        rss_end = rss_kb(server.pid)
        server.terminate()
        server.wait(timeout=15)
    total = sum(len(v) for v in stats.latency.values())
    print(f"soak: {SECONDS} s, {CLIENTS} clients, image cache {IMAGE_CACHE_MB} MB, {total} requests, {len(stats.errors)} errors, "
          f"server exit {server.returncode}")
    print(f"{'kind':<10} {'count':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for kind, values in sorted(stats.latency.items()):
        values.sort()
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(f"{kind:<10} {len(values):>7} {statistics.median(values) * 1000:>8.1f} {p99 * 1000:>8.1f}")
    print(f"server RSS: {rss_warm / 1024:.0f} MB after warm-up → {rss_end / 1024:.0f} MB at the end "
          f"({(rss_end - rss_warm) / 1024:+.0f} MB)")
    for e in stats.errors[:10]:
        print("error:", e)
    sys.exit(1 if stats.errors or server.returncode != 0 else 0)


if __name__ == "__main__":
    main()
