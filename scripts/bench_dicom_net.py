#!/usr/bin/env python3
"""Receiving over DICOM: the same N files sent by DCMTK's storescu (one association, explicit VR little
endian) into our listener and into Orthanc (Debian `orthanc`, default SQLite index) on this machine, each
with a fresh data dir, alternated ROUNDS times; instances/s and MB/s, best round, side by side. Each receiver
has every instance on disk and in its database before it answers success, as both do.

Files (made once into target/bench/dicom-net): N CR films of 1024×1024 16-bit (2 MiB each), each its own
instance of one of N/10 studies — what a day's chest films look like arriving from the consoles.

Usage: .venv/bin/python scripts/bench_dicom_net.py [N=200] [ROUNDS=3] [BINARY=target/release/medgemma-x]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ComputedRadiographyImageStorage, ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback import free_port, serve  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
BINARY = Path(sys.argv[3]) if len(sys.argv) > 3 else ROOT / "target/release/medgemma-x"
FILES = ROOT / f"target/bench/dicom-net/{N}"


# Beside the folder, not in it: storescu +sd sends every file it finds there.
MADE = FILES.with_name(f"{N}.done")


def make_files():
    if MADE.exists():
        return
    FILES.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    studies = [generate_uid() for _ in range(max(1, N // 10))]
    for i in range(N):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = ComputedRadiographyImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = studies[i % len(studies)], generate_uid()
        ds.Modality, ds.PatientID, ds.PatientName = "CR", f"NET{i % len(studies):04d}", "BENCH^NET"
        ds.StudyDate, ds.InstanceNumber = "20261201", 1
        ds.Rows = ds.Columns = 1024
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelSpacing = [0.143, 0.143]
        ds.PixelData = rng.integers(0, 4096, (1024, 1024), dtype=np.uint16).tobytes()
        ds.save_as(FILES / f"{i:04d}.dcm", enforce_file_format=True)
    MADE.touch()


def send(port, called):
    """Seconds storescu takes to send every file in one association."""
    started = time.perf_counter()
    subprocess.run(["/usr/bin/storescu", "-aet", "BENCHSCU", "-aec", called, "-xe", "+sd", "127.0.0.1", str(port),
                    str(FILES)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def ours():
    with tempfile.TemporaryDirectory() as data:
        http, dicom = free_port(), free_port()
        server = serve(BINARY, data, http, "--dicom-bind", f"127.0.0.1:{dicom}", "--dicom-accept-any",
                       "--pre-read", "false", "--dicom-max-associations", "4")
        try:
            seconds = send(dicom, "MEDGEMMAX")
            ready = json.load(urllib.request.urlopen(f"http://127.0.0.1:{http}/readyz"))
            stored = ready["dicom"]["instances_stored"]
            assert stored == N, f"we stored {stored} of {N}"
            return seconds
        finally:
            server.terminate()
            server.wait()


def orthanc():
    with tempfile.TemporaryDirectory() as data:
        http, dicom = free_port(), free_port()
        config = {"Name": "bench", "StorageDirectory": f"{data}/storage", "IndexDirectory": f"{data}/storage",
                  "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
                  "AuthenticationEnabled": False, "Plugins": [], "DicomAlwaysAllowStore": True}
        Path(data, "orthanc.json").write_text(json.dumps(config))
        command = ["/usr/sbin/Orthanc", f"{data}/orthanc.json"]
        if os.geteuid() == 0:
            os.chmod(data, 0o777)
            command = ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{http}/system", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            seconds = send(dicom, "ORTHANC")
            stored = json.load(urllib.request.urlopen(f"http://127.0.0.1:{http}/statistics"))["CountInstances"]
            assert stored == N, f"Orthanc stored {stored} of {N}"
            return seconds
        finally:
            server.terminate()
            server.wait()


def main():
    for tool in ("/usr/bin/storescu", "/usr/sbin/Orthanc"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (scripts/test.sh installs dcmtk and orthanc)")
    make_files()
    megabytes = sum(f.stat().st_size for f in FILES.glob("*.dcm")) / 1e6
    times = {"MedGemma-X": [], "Orthanc 1.10": []}
    for _ in range(ROUNDS):
        times["MedGemma-X"].append(ours())
        times["Orthanc 1.10"].append(orthanc())
    print(f"{N} files, {megabytes:.0f} MB, storescu -xe, one association; best of {ROUNDS} rounds")
    print(f"{'receiver':<14} {'seconds':>8} {'instances/s':>12} {'MB/s':>8}   all rounds (s)")
    for name, rounds in times.items():
        best = min(rounds)
        print(f"{name:<14} {best:>8.2f} {N / best:>12.1f} {megabytes / best:>8.1f}   "
              + " ".join(f"{t:.2f}" for t in rounds))
    ratio = min(times["Orthanc 1.10"]) / min(times["MedGemma-X"])
    print(f"MedGemma-X / Orthanc throughput: {ratio:.2f}×")


if __name__ == "__main__":
    main()
