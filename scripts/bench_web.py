#!/usr/bin/env python3
"""The web app's weight and speed: the wasm, js and css bundles (raw and gzip -9: what crosses the hospital
LAN once per session), the time until each page is interactive in Debian's Chromium (navigation start
→ the hydrated app marks its page; median and max of 5 cold loads) against a fresh release server on
loopback with one uploaded film, and client-side windowing on a 3000×3000 16-bit radiograph (the time of
each redraw while the window is dragged, and redraws per second; target ≥ 30).

Usage: .venv/bin/python scripts/bench_web.py [BINARY=target/release/medgemma-x]   (after a release build)
"""
import gzip
import io
import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from loopback import Session, free_port, multipart, serve, upload_film

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
            body, content_type = multipart([("large.dcm", large_radiograph())], {})
            large = json.loads(session.request("/api/v1/uploads", body, content_type))["files"][0]["study_id"]
            window = subprocess.run(["node", str(ROOT / "end2end/bench/window.mjs"), base, session.cookie,
                                     f"/studies/{large}"],
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
    w = json.loads(window.stdout.strip().splitlines()[-1])
    print(f"windowing {w['image']} in the browser: {w['redraws']} redraws for {w['moves']} pointer moves, "
          f"redraw median {w['redraw_ms_median']:.1f} ms / p95 {w['redraw_ms_p95']:.1f} ms "
          f"(≤ {1000 / max(w['redraw_ms_median'], 1e-9):.0f} fps), {w['redraws_per_s_during_drag']:.1f} redraws/s "
          f"while driven by Playwright (its round trips included)")


def large_radiograph():
    """A 3000×3000 12-bit DX film (MONOCHROME2, ImagerPixelSpacing 0.143 mm) with smooth structure."""
    import numpy as np
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, generate_uid

    yy, xx = np.mgrid[0:3000, 0:3000]
    pixels = (2048 + 1500 * np.sin(xx / 300.0) * np.cos(yy / 200.0)).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID, ds.PatientName, ds.StudyDate = "DX", "BENCH-LARGE", "BENCH^LARGE", "20251015"
    ds.Rows = ds.Columns = 3000
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.ImagerPixelSpacing = [0.143, 0.143]
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = pixels.tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


if __name__ == "__main__":
    main()
