#!/usr/bin/env python3
"""What the guard costs each request: the same loopback server answers /healthz (no guard), and
/api/v1/auth/me with a session cookie and with an API token (caller looked up, permission checked, audit row
written and hash-chained). Prints p50/p99 per kind and the ratio to /healthz.
Usage: .venv/bin/python scripts/bench_auth.py [REQUESTS=2000] [BINARY=target/release/medgemma-x]
"""
import http.client
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loopback import Session, free_port, serve

ROOT = Path(__file__).resolve().parent.parent
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
BINARY = sys.argv[2] if len(sys.argv) > 2 else str(ROOT / "target/release/medgemma-x")


def timed(port, path, headers):
    """Sequential GETs on one keep-alive connection, as a browser tab makes them; seconds each."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for _ in range(N):
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}")
        times.append(time.perf_counter() - start)
    conn.close()
    return sorted(times)


def main():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        server = serve(BINARY, data, port)
        token = subprocess.run([BINARY, "token", "create", "bench", "--scopes", "report_read", "--data-dir", data],
                               capture_output=True, text=True, check=True).stdout.split()[-1]
        try:
            session = Session(base)
            kinds = {
                "/healthz (no guard)": ("/healthz", {}),
                "me, session cookie": ("/api/v1/auth/me", session.headers()),
                "me, API token": ("/api/v1/auth/me", {"Authorization": f"Bearer {token}"}),
            }
            timed(port, "/healthz", {})  # warm-up
            results = {name: timed(port, path, headers) for name, (path, headers) in kinds.items()}
            rows = int(subprocess.run([BINARY, "audit", "verify", "--data-dir", data], capture_output=True, text=True,
                                      check=True).stdout.split("：")[1].split()[0])
        finally:
            server.terminate()
            server.wait(timeout=30)
    base_p50 = statistics.median(results["/healthz (no guard)"])
    print(f"{N} sequential requests each on one connection; audit rows written and verified: {rows}")
    print(f"{'request':<22} {'p50 ms':>8} {'p99 ms':>8} {'p50 × healthz':>14}")
    for name, t in results.items():
        p50, p99 = statistics.median(t), t[int(len(t) * 0.99)]
        print(f"{name:<22} {p50 * 1000:>8.3f} {p99 * 1000:>8.3f} {p50 / base_p50:>14.1f}")


if __name__ == "__main__":
    main()
