#!/usr/bin/env python3
"""DICOM decode speed: our reader (imaging crate, release build) against pydicom 3 + pylibjpeg on the same
files, each timed from bytes in memory through parse, pixel decode and modality LUT, median of N runs.

Files (made once into target/bench/dicom): a 2500×2048 12-bit chest radiograph in every transfer syntax
a county hospital meets, and a 512×512×60 CT volume (multi-frame, signed, rescaled).

Usage: .venv/bin/python scripts/bench_dicom.py [REPEATS]
"""
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_modality_lut
from pydicom.uid import (
    CTImageStorage, DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, RLELossless, JPEG2000Lossless,
    generate_uid,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "target/bench/dicom"
REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def dataset(modality, sop_class, rows, cols, frames=1, signed=False):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID, ds.PatientName = modality, "BENCH", "BENCH^DICOM"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, cols, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 1 if signed else 0
    if frames > 1:
        ds.NumberOfFrames = frames
    return ds


def make_files():
    if (OUT / ".done").exists():
        return
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    # A smooth "chest" with ribs-like stripes and detector noise: compresses like a real film.
    yy, xx = np.mgrid[0:2500, 0:2048].astype(np.float32)
    body = 2500 * np.exp(-(((xx - 1024) / 800) ** 2 + ((yy - 1250) / 1000) ** 2))
    ribs = 300 * (np.sin(yy / 40) > 0.6) * (body > 1200)
    cxr = np.clip(body + ribs + rng.normal(0, 20, body.shape), 0, 4095).astype(np.uint16)
    ds = dataset("DX", DigitalXRayImageStorageForPresentation, 2500, 2048)
    ds.ImagerPixelSpacing = [0.139, 0.139]
    ds.PixelData = cxr.tobytes()
    base = OUT / "cxr_explicit_le.dcm"
    ds.save_as(base, enforce_file_format=True)
    for option, name in [("+ti", "implicit_le"), ("+tb", "explicit_be"), ("+td", "deflated")]:
        subprocess.run(["dcmconv", option, str(base), str(OUT / f"cxr_{name}.dcm")], check=True)
    d = pydicom.dcmread(base)
    d.compress(RLELossless)
    d.save_as(OUT / "cxr_rle.dcm", enforce_file_format=True)
    d = pydicom.dcmread(base)
    d.compress(JPEG2000Lossless)
    d.save_as(OUT / "cxr_j2k_lossless.dcm", enforce_file_format=True)
    for tool, args, name in [("dcmcjpeg", ["+e1"], "jpeg_lossless_sv1"), ("dcmcjpeg", ["+ee"], "jpeg_extended_12bit"),
                             ("dcmcjpls", [], "jpeg_ls_lossless")]:
        subprocess.run([tool, *args, str(base), str(OUT / f"cxr_{name}.dcm")], check=True)
    # CT: 60 frames of 512×512, signed, intercept −1024.
    ct = dataset("CT", CTImageStorage, 512, 512, frames=60, signed=True)
    ct.RescaleIntercept, ct.RescaleSlope, ct.PixelSpacing = -1024, 1, [0.7, 0.7]
    yy, xx = np.mgrid[0:512, 0:512]
    slice_hu = np.where(((xx - 256) / 220) ** 2 + ((yy - 256) / 160) ** 2 < 1, -850, -1000)
    vol = np.stack([slice_hu + rng.normal(0, 15, slice_hu.shape) for _ in range(60)])
    ct.PixelData = np.round(vol + 1024).astype(np.int16).tobytes()
    ct.save_as(OUT / "ct_60_frames.dcm", enforce_file_format=True)
    (OUT / ".done").write_text("ok")


def time_pydicom(path):
    raw = path.read_bytes()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        ds = pydicom.dcmread(io.BytesIO(raw))
        apply_modality_lut(ds.pixel_array, ds)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    make_files()
    files = sorted(p for p in OUT.glob("*.dcm"))
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "imaging", "--example", "decode_timing"], check=True, cwd=ROOT)
    ours_out = subprocess.run([str(ROOT / "target/release/examples/decode_timing"), str(REPEATS), *map(str, files)],
                              check=True, capture_output=True, text=True).stdout
    ours = {Path(j["file"]).name: j["median_ms"] for j in map(json.loads, ours_out.splitlines())}
    print(f"{'file':<28} {'MB':>6} {'ours ms':>9} {'pydicom ms':>11} {'ratio':>7}")
    ratios = []
    for f in files:
        theirs = time_pydicom(f)
        ratio = theirs / ours[f.name]
        ratios.append(ratio)
        print(f"{f.name:<28} {f.stat().st_size / 1e6:>6.1f} {ours[f.name]:>9.1f} {theirs:>11.1f} {ratio:>6.1f}×")
    geo = float(np.exp(np.mean(np.log(ratios))))
    print(f"geometric mean ratio (pydicom time / ours): {geo:.1f}× over {len(files)} files, {REPEATS} runs each, "
          f"{os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
