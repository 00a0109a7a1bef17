#!/usr/bin/env python3
"""Time from starting `medgemma-x serve` (no model, fresh data dir) to the first 200 from /healthz.

Reference in the same run: the first byte `medgemma-x --help` prints, which comes right after the dynamic
loader has mapped the same shared libraries (libtorch and the CUDA runtime, ~1 GB) and run their static
initialisers; the difference is the server's own start-up work.
Usage: scripts/bench_startup.py [BINARY] [RUNS]   (default target/release/medgemma-x, 10 runs)
"""
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/medgemma-x"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_healthz():
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [binary, "serve", "--bind", f"127.0.0.1:{port}", "--data-dir", data],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                        if r.status == 200:
                            return time.perf_counter() - start
                except OSError:
                    if proc.poll() is not None:
                        sys.exit(f"server exited with {proc.returncode}")
                    time.sleep(0.002)
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def time_to_first_help_byte():
    start = time.perf_counter()
    proc = subprocess.Popen([binary, "--help"], stdout=subprocess.PIPE)
    proc.stdout.read(1)
    elapsed = time.perf_counter() - start
    proc.communicate()
    return elapsed


time_to_healthz()  # warm the page cache: the first load of libtorch reads ~1 GB from disk
serve = [time_to_healthz() for _ in range(runs)]
help_ = [time_to_first_help_byte() for _ in range(runs)]
med_serve, med_help = statistics.median(serve), statistics.median(help_)
print(f"binary: {binary}, runs: {runs}")
print(f"serve → /healthz 200: median {med_serve * 1000:.0f} ms, max {max(serve) * 1000:.0f} ms")
print(f"reference: first byte of `--help` (library load only): median {med_help * 1000:.0f} ms")
print(f"ratio serve/reference: {med_serve / med_help:.2f}; server's own start-up ≈ {(med_serve - med_help) * 1000:.0f} ms")
print("target: < 1000 ms →", "met" if max(serve) < 1.0 else "NOT met")
