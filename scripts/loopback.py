"""What the loopback scripts (soak, bench_chat, bench_web) share: a free port, an account and a signed-in
session, a multipart body, an upload."""
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

# The radiologist every script adds to its fresh data dir before starting the server.
USER = "bench-doctor"
PASSWORD = "loopback bench passphrase"


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


def serve(binary, data_dir, port, *flags):
    """`medgemma-x serve` on loopback with a fresh data dir (the scripts' radiologist added first); returns the
    process once /healthz answers."""
    add_user(binary, data_dir)
    server = subprocess.Popen([str(binary), "serve", "--bind", f"127.0.0.1:{port}", "--data-dir", str(data_dir),
                               "--log-format", "json", *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not answer /healthz within 30 s")


def add_user(binary, data_dir):
    """`medgemma-x user add` of the scripts' radiologist into a (fresh) data dir, before `serve` starts."""
    subprocess.run([str(binary), "user", "add", USER, "--role", "radiologist", "--password-stdin",
                    "--data-dir", str(data_dir)], input=PASSWORD + "\n", text=True, check=True,
                   stdout=subprocess.DEVNULL)


class Session:
    """Signed in as USER: every request carries the session cookie, and POSTs the CSRF token."""

    def __init__(self, base):
        self.base = base
        req = urllib.request.Request(f"{base}/api/v1/auth/login", method="POST",
                                     data=json.dumps({"username": USER, "password": PASSWORD}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            self.csrf = json.load(r)["csrf_token"]
            cookie = next(c for c in r.headers.get_all("Set-Cookie") if c.startswith("mgx_session="))
            self.cookie = cookie.split(";")[0]

    def headers(self, post=False):
        return {"Cookie": self.cookie, **({"X-CSRF-Token": self.csrf} if post else {})}

    def request(self, path, data=None, content_type=None, expect=(200,), timeout=60):
        """GET (or POST when there is data); the body, after checking the status is one of `expect`."""
        req = urllib.request.Request(self.base + path, data=data, method="POST" if data is not None else "GET",
                                     headers=self.headers(post=data is not None))
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                body, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            body, status = e.read(), e.code
        if status not in expect:
            raise RuntimeError(f"{path}: HTTP {status} {body[:200]!r}")
        return body


def upload_film(session: Session, path: Path, patient_id):
    """Uploads one JPEG/PNG as a study of `patient_id`; returns its study id."""
    body, content_type = multipart([(path.name, path.read_bytes())],
                                   {"patient_id": patient_id, "patient_name": "基准测试", "exam_date": "2025-10-15"})
    return json.loads(session.request("/api/v1/uploads", body, content_type))["files"][0]["study_id"]
