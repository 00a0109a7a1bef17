#!/usr/bin/env python3
"""The web app's weight and speed: the wasm, js and css bundles (raw and gzip -9: what crosses the hospital
LAN once per session), and the time until each page is interactive in Debian's Chromium (navigation start
→ the hydrated app marks its page; median and max of 5 cold loads) against a fresh release server on
loopback with one uploaded film.

Usage: .venv/bin/python scripts/bench_web.py [BINARY=target/release/medgemma-x]   (after a release build)
"""
import gzip
import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from loopback import Session, free_port, serve, upload_film

ROOT = Path(__file__).resolve().parent.parent
BINARY = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/release/medgemma-x")
PKG = ROOT / "target/site/pkg"


def main():
    print(f"{'bundle':<20} {'raw KiB':>9} {'gzip KiB':>9}")
    total = 0
    # What the browser loads (wasm-bindgen also writes .d.ts files; nothing fetches them).
    for f in sorted(p for p in PKG.glob("medgemma-x*") if p.suffix in (".wasm", ".js", ".css")):
        raw = f.read_bytes()
        packed = len(gzip.compress(raw, 9))
        total += packed
        print(f"{f.name:<20} {len(raw) / 1024:>9.1f} {packed / 1024:>9.1f}")
    print(f"{'total':<20} {'':>9} {total / 1024:>9.1f}")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        server = serve(BINARY, data, port, "--model-dir", str(ROOT / "target/fixtures/tiny-a"))
        try:
            session = Session(base)
            study = upload_film(session, ROOT / "target/fixtures/dicom/synthetic/cxr.jpg", "WEB-1")
            # What the server itself sends a browser that accepts gzip (it compresses at its fastest level).
            served = {}
            for f in ("medgemma-x.wasm", "medgemma-x.js", "medgemma-x.css"):
                req = urllib.request.Request(f"{base}/pkg/{f}", headers={"Accept-Encoding": "gzip"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    served[f] = (len(r.read()), r.headers.get("Content-Encoding") or "none")
            # The pages load as the signed-in radiologist (session cookie handed to the browser); /login as anyone.
            out = subprocess.run(["node", str(ROOT / "end2end/bench/web.mjs"), base, session.cookie,
                                  "/login", "/", "/studies", f"/studies/{study}"],
                                 cwd=ROOT / "end2end", capture_output=True, text=True, check=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    for f, (size, encoding) in served.items():
        print(f"served {f:<17} {size / 1024:>9.1f} KiB ({encoding})")
    results = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'page':<20} {'interactive ms (median / max of 5 cold loads)':>46}")
    for path, r in results.items():
        print(f"{path:<20} {r['median_ms']:>22.0f} / {r['max_ms']:.0f}")


if __name__ == "__main__":
    main()
