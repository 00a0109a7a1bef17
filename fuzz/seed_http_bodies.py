#!/usr/bin/env python3
"""Seeds the http_bodies fuzz corpus (folder given) with one valid body per route, so that libFuzzer starts
from requests the server takes and mutates them: its first byte picks the route, the rest is the body."""
import json
import sys
from pathlib import Path

BOUNDARY = "fuzzboundary"
REPORT = {
    "exam_id": "FUZZ-1",
    "report_summary": "右肺上叶见一实性结节。",
    "findings": [{"location": "右肺上叶", "feature": "实性结节", "density": "软组织密度", "boundary": "边界清楚",
                  "measurements": {"long_axis": 8.2, "short_axis": 6.1, "unit": "mm"}}],
    "recommendation": "建议12个月后低剂量CT复查。",
}


def multipart():
    jpeg = Path("target/fixtures/dicom/synthetic/cxr.jpg").read_bytes()
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"patient_id\"\r\n\r\nP-1\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"pixel_spacing_mm\"\r\n\r\n0.2\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n\r\n").encode()
    return head + jpeg + f"\r\n--{BOUNDARY}--\r\n".encode()


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    seeds = {
        "upload": bytes([0]) + multipart(),
        "report": bytes([1]) + json.dumps({"report": REPORT}, ensure_ascii=False).encode(),
        "edit": bytes([2]) + json.dumps({"report": REPORT, "version": 1}, ensure_ascii=False).encode(),
        "chat": bytes([3]) + json.dumps({"message": "描述这张胸片", "mode": "report_draft",
                                         "measurements": [{"location": "右肺", "long_axis_mm": 9}]},
                                        ensure_ascii=False).encode(),
        "login": bytes([4]) + b'{"username":"fuzz","password":"wrong","totp":"123456"}',
    }
    for name, data in seeds.items():
        (out / f"seed-{name}").write_bytes(data)


if __name__ == "__main__":
    main()
