"""What the loopback scripts (soak, bench_chat, bench_web) share: a free port, a multipart body, an upload."""
import json
import socket
import urllib.request
import uuid
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart(files, fields):
    """(body, content type) for form `fields` then `files` [(name, bytes)] under the field name "files"."""
    boundary = uuid.uuid4().hex
    body = b""
    for k, v in fields.items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    for name, data in files:
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload_film(base, path: Path, patient_id):
    """Uploads one JPEG/PNG as a study of `patient_id`; returns its study id."""
    body, content_type = multipart([(path.name, path.read_bytes())],
                                   {"patient_id": patient_id, "patient_name": "基准测试", "exam_date": "2025-10-15"})
    req = urllib.request.Request(f"{base}/api/v1/uploads", data=body, method="POST")
    req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)["files"][0]["study_id"]
