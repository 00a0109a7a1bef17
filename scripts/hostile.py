#!/usr/bin/env python3
"""Hostile clients against an already-running MedGemma-X server on loopback: on its HTTP port, and on its
DICOM port (raw PDUs: a 4 GiB length, truncated PDUs, a data set that lies about its SOP class, a silent
connection, 200 associations at once, C-FIND from a peer that may not query and with a lying identifier;
the attacks call as a peer they add with `medgemma-x dicom peer add`).

Each attack prints one line, `refused      <name>: <detail>` when the server did what it must (and still
answered /healthz afterwards) or `NOT REFUSED  <name>: <detail>`; attacks that cannot run here print
`skipped      <name>: <why>`. Meanwhile one thread reads the server's resident memory (/proc/PID/status,
VmRSS) every 100 ms, and another asks /healthz every 100 ms from 127.0.0.2 (the attacks come from
127.0.0.1, so a per-address limit on the attacker must not slow the honest client). The summary line gives
the peak RSS and the /healthz latency p50/p99/max.

Exit 0 when every attack was refused, no /healthz probe failed, its p99 stayed under 50 ms and the peak RSS
under 1.5 GiB; else 1, with the reasons.

    scripts/hostile.py --url http://127.0.0.1:PORT --pid PID --data-dir DIR [--short] [--bin PATH]
    scripts/hostile.py [--short] [--bin PATH] [--model-dir DIR]   # starts a server of its own

The data dir is the server's: accounts and an API token are made in it with the CLI (`medgemma-x user add`,
`medgemma-x token create`), and the admin's password is read from DIR/secrets/initial-admin-password. Account
names get a random suffix, so the script can run again against the same server. The sign-in guessing comes
from a random 127.x.y.z address of its own, so the failures it leaves behind never throttle a later run's
sign-ins from 127.0.0.1.

Standard library only.
"""
import argparse
import contextlib
import http.client
import io
import json
import math
import os
import random
import re
import secrets
import selectors
import socket
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ATTACKER_IP = "127.0.0.1"
HONEST_IP = "127.0.0.2"
STANDARD_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "other"}


# ---------------------------------------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, status, headers=None, body=b"", error=None):
        self.status = status  # 0: no answer (see error)
        self.headers = headers
        self.body = body
        self.error = error

    def json(self):
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def code(self):
        """The API's error code (`{"error": {"code": …}}`), if the body has one."""
        data = self.json()
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return data["error"].get("code")
        return None

    def header(self, name, default=None):
        return self.headers.get(name, default) if self.headers is not None else default

    def describe(self):
        if self.status == 0:
            return f"no answer ({self.error})"
        code = self.code()
        return f"{self.status}" + (f" {code}" if code else "")


class Http:
    """One caller: a fresh connection per request (so no idle keep-alive connection holds one of the
    attacker address's places), from `source_ip`; keeps the session cookie and CSRF token of a sign-in,
    or sends an API token."""

    def __init__(self, host, port, source_ip=ATTACKER_IP, timeout=30.0, bearer=None):
        self.host, self.port, self.source_ip, self.timeout = host, port, source_ip, timeout
        self.bearer = bearer
        self.session = None
        self.csrf = None

    def connection(self, timeout=None):
        source = (self.source_ip, 0) if self.source_ip else None
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout or self.timeout,
                                          source_address=source)

    def auth_headers(self, method):
        headers = {}
        if self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer}"
        if self.session:
            headers["Cookie"] = f"mgx_session={self.session}"
            if self.csrf and method not in ("GET", "HEAD", "OPTIONS"):
                headers["X-CSRF-Token"] = self.csrf
        return headers

    def request(self, method, path, body=None, headers=None, json_body=None, timeout=None):
        all_headers = {"Connection": "close", **self.auth_headers(method), **(headers or {})}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers["Content-Type"] = "application/json"
        conn = self.connection(timeout)
        try:
            try:
                conn.request(method, path, body=body, headers=all_headers)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer (413) before it read everything: read that answer
            response = conn.getresponse()
            data = response.read()
            self.remember_cookie(response)
            return Response(response.status, response.headers, data)
        except (OSError, http.client.HTTPException) as e:
            return Response(0, error=f"{type(e).__name__}: {e}")
        finally:
            conn.close()

    def remember_cookie(self, response):
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            if name.strip() == "mgx_session":
                self.session = rest.split(";", 1)[0]

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json_body=None, **kw):
        return self.request("POST", path, json_body=json_body, **kw)

    def put(self, path, json_body=None, **kw):
        return self.request("PUT", path, json_body=json_body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def login(self, username, password):
        """Signs in; on 200 keeps the session cookie and the CSRF token of the answer."""
        self.session = self.csrf = None
        response = self.post("/api/v1/auth/login", {"username": username, "password": password})
        if response.status == 200:
            self.csrf = (response.json() or {}).get("csrf_token")
        return response

    def upload(self, files, fields=None, timeout=None):
        """POST /api/v1/uploads: `fields` {name: text} first, then `files` [(file name, bytes)]."""
        body, content_type = multipart(files, fields or {})
        return self.request("POST", "/api/v1/uploads", body=body, headers={"Content-Type": content_type},
                            timeout=timeout)


def multipart(files, fields):
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for file_name, data in files:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{file_name}"\r\n'
                  "Content-Type: application/octet-stream\r\n\r\n".encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def raw_status(host, port, request_bytes, timeout=10.0, source_ip=ATTACKER_IP):
    """Sends raw bytes on a fresh connection; the status code of the answer (0 if none came)."""
    try:
        with socket.create_connection((host, port), timeout=timeout, source_address=(source_ip, 0)) as s:
            s.sendall(request_bytes)
            got = b""
            while b"\r\n" not in got and len(got) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
    except OSError:
        return 0
    match = re.match(rb"HTTP/1\.[01] (\d{3})", got)
    return int(match.group(1)) if match else 0


# ---------------------------------------------------------------------------------------------------------
# Images and archives, built here


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_grey(width, height, rows):
    """An 8-bit grey PNG; `rows` yields each row's `width` bytes (compressed as they come)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    idat = io.BytesIO()
    for row in rows:
        idat.write(compressor.compress(b"\x00"))  # filter type: none
        idat.write(compressor.compress(row))
    idat.write(compressor.flush())
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat.getvalue()) + png_chunk(b"IEND", b"")


def small_png(size=64):
    """A small grey PNG with random content: every one is a new study (UIDs come from the content)."""
    return png_grey(size, size, (os.urandom(size) for _ in range(size)))


def huge_png(side):
    """A side × side grey PNG of zeros: a few hundred KB that decodes to side² bytes and more."""
    zeros = bytes(side)
    return png_grey(side, side, (zeros for _ in range(side)))


def zip_bomb(megabytes):
    """A zip whose one entry is `megabytes` MiB of zeros, deflated; written a chunk at a time."""
    out = io.BytesIO()
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("zeros.dcm", "w") as entry:
            for _ in range(megabytes):
                entry.write(chunk)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------------
# Watchers: memory and /healthz, in the background for the whole run


class RssWatcher(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples = []  # (monotonic time, bytes)
        self.gone = False
        self.stop = threading.Event()

    def read(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            self.gone = True
        return None

    def run(self):
        while not self.stop.is_set():
            rss = self.read()
            if rss is not None:
                self.samples.append((time.monotonic(), rss))
            self.stop.wait(0.1)

    def peak(self, since=None, until=None):
        values = [r for t, r in self.samples if (since is None or t >= since) and (until is None or t <= until)]
        return max(values, default=0)


class HealthProbe(threading.Thread):
    """GET /healthz every 100 ms from HONEST_IP, each on a fresh connection; a failure counts as its
    timeout."""

    TIMEOUT = 5.0

    def __init__(self, host, port):
        super().__init__(daemon=True)
        self.client = Http(host, port, source_ip=HONEST_IP, timeout=self.TIMEOUT)
        self.samples = []  # (monotonic time, seconds, ok)
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            started = time.monotonic()
            ok = self.client.get("/healthz").status == 200
            elapsed = time.monotonic() - started
            self.samples.append((started, elapsed if ok else max(elapsed, self.TIMEOUT), ok))
            self.stop.wait(max(0.0, 0.1 - elapsed))

    def between(self, since, until):
        return [(s, ok) for t, s, ok in self.samples if since <= t <= until]


def percentile(values, p):
    """Nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(p / 100 * len(ordered)))) - 1]


# ---------------------------------------------------------------------------------------------------------
# The attacks. Each returns (refused, detail); an exception counts as not refused.


class Skip(Exception):
    pass


class Context:
    """What the attacks share: the server, the CLI, the accounts made for this run."""

    def __init__(self, args, host, port, rss):
        self.args, self.host, self.port, self.rss = args, host, port, rss
        self.short = args.short
        self.suffix = secrets.token_hex(3)
        self.accounts = {}  # role name → (username, password)
        self.clients = {}  # role name → signed-in Http
        self.study = None  # (study id, instance id) of the first radiologist's upload

    def http(self, **kw):
        return Http(self.host, self.port, **kw)

    def cli(self, *args, stdin=None):
        command = [self.args.bin, *args, "--data-dir", self.args.data_dir]
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:3])} failed: {done.stderr.strip()[-300:]}")
        return done.stdout

    def add_user(self, name, role):
        """A new account `name-<suffix>` made at the console; returns (username, password)."""
        username = f"{name}-{self.suffix}"
        password = "Hx" + secrets.token_urlsafe(18)
        self.cli("user", "add", username, "--role", role, "--password-stdin", stdin=password + "\n")
        self.accounts[name] = (username, password)
        return username, password

    def create_token(self, name, scopes):
        out = self.cli("token", "create", f"{name}-{self.suffix}", "--scopes", scopes)
        for line in out.splitlines():
            if line.strip().startswith("mgx_"):
                return line.strip()
        raise RuntimeError("token create printed no mgx_ token")

    def signed_in(self, name, role="radiologist"):
        """The session of account `name` (made on first use)."""
        if name not in self.clients:
            username, password = self.accounts.get(name) or self.add_user(name, role)
            client = self.http()
            response = client.login(username, password)
            if response.status != 200 or not client.csrf:
                raise RuntimeError(f"sign-in of {username} answered {response.describe()}")
            self.clients[name] = client
        return self.clients[name]

    def admin(self):
        if "admin" not in self.clients:
            path = Path(self.args.data_dir) / "secrets" / "initial-admin-password"
            password = path.read_text().strip()
            client = self.http()
            response = client.login("admin", password)
            if response.status != 200:
                raise RuntimeError(f"admin sign-in (password from {path}) answered {response.describe()}")
            self.clients["admin"] = client
        return self.clients["admin"]

    def upload_study(self, client, patient_id):
        """A small PNG uploaded by `client`: (study id, instance id)."""
        response = client.upload([("tiny.png", small_png())],
                                 {"patient_id": patient_id, "patient_name": "HOSTILE^TEST", "pixel_spacing_mm": "0.5"})
        files = (response.json() or {}).get("files") or [{}]
        if response.status != 200 or "study_id" not in files[0]:
            raise RuntimeError(f"upload of a small PNG answered {response.describe()}: {response.body[:200]!r}")
        return files[0]["study_id"], files[0]["instance_id"]

    def doctor_study(self):
        if self.study is None:
            self.study = self.upload_study(self.signed_in("doctor"), f"HOSTILE-{self.suffix}-1")
        return self.study

    def measure(self, client, study, instance):
        body = {"instance_id": instance, "label": "hostile",
                "shape": {"kind": "length", "a": {"x": 5, "y": 5}, "b": {"x": 40, "y": 5}}}
        response = client.post(f"/api/v1/studies/{study}/measurements", body)
        if response.status != 201:
            raise RuntimeError(f"a valid measurement answered {response.describe()}")
        return response.json()["id"]


def report_with(measurement_ids):
    return {
        "exam_id": "HOSTILE-001",
        "report_summary": "右肺上叶见一实性结节，边界清楚。",
        "findings": [{"location": "右肺上叶", "feature": "实性结节",
                      "measurements": {"long_axis": 8.2, "short_axis": 6.1, "unit": "mm"},
                      "density": "软组织密度", "boundary": "边界清楚",
                      "measurement_ids": [str(m) for m in measurement_ids]}],
        "recommendation": "建议12个月后低剂量CT复查。",
    }


def statuses(responses):
    counts = {}
    for r in responses:
        counts[r.describe()] = counts.get(r.describe(), 0) + 1
    return ", ".join(f"{n}× {k}" for k, n in sorted(counts.items()))


def audit_flood(ctx):
    count = 10 if ctx.short else 50
    # 2 MB, under the 2 MiB body limit: the sign-in itself must refuse it (a 413 would do too).
    body = json.dumps({"username": "A" * 2_000_000, "password": "whatever it is"}).encode()
    client = ctx.http(timeout=60)

    def sign_in(_):
        return client.post("/api/v1/auth/login", body=body, headers={"Content-Type": "application/json"})

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(sign_in, range(count)))
    floods_refused = all(r.status in (400, 413, 429) for r in answers)
    long_path = client.get("/api/v1/" + "a" * 5000)
    detail = f"{count} sign-ins with a 2 MB username: {statuses(answers)}; 5000-byte path: {long_path.describe()}"
    return floods_refused and long_path.status == 414, detail


def parallel_guessing(ctx):
    count = 30 if ctx.short else 60
    username, password = ctx.add_user("victim", "radiologist")
    # An address of its own: the failures left on it cannot throttle other sign-ins (or a later run).
    address = f"127.{random.randint(10, 250)}.{random.randint(1, 250)}.{random.randint(1, 250)}"
    client = ctx.http(source_ip=address, timeout=60)
    barrier = threading.Barrier(count)

    def guess(i):
        barrier.wait(timeout=30)
        return client.post("/api/v1/auth/login", {"username": username, "password": f"wrong guess {i:04d}"})

    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(guess, range(count)))
    wrong = sum(r.status == 401 for r in answers)
    throttled = sum(r.status == 429 for r in answers)
    waits = [int(r.header("Retry-After", "1")) for r in answers if r.status == 429 and
             str(r.header("Retry-After", "1")).isdigit()]
    burst_ok = wrong <= 10 and wrong + throttled == count and throttled > 0
    # Then the owner, with the right password, once the delay has passed (at most 10 s in all).
    deadline = time.monotonic() + 10
    time.sleep(min(max(waits, default=1), 10))
    owner = ctx.http(source_ip=address)
    while True:
        right = owner.login(username, password)
        if right.status != 429 or time.monotonic() >= deadline:
            break
        retry = right.header("Retry-After", "1")
        time.sleep(min(int(retry) if str(retry).isdigit() else 1, max(0.1, deadline - time.monotonic())))
    detail = (f"{count} parallel wrong passwords from {address}: {statuses(answers)} (Retry-After up to "
              f"{max(waits, default=0)} s); then the right one: {right.describe()}")
    return burst_ok and right.status == 200, detail


def zip_bomb_attack(ctx):
    megabytes = 50 if ctx.short else 200
    archive = zip_bomb(megabytes)
    client = ctx.signed_in("doctor")
    started = time.monotonic()
    before = ctx.rss.peak(since=started - 1)
    response = client.upload([("bomb.zip", archive)], {"patient_id": f"HOSTILE-{ctx.suffix}-bomb"}, timeout=120)
    time.sleep(0.3)  # one more RSS sample after the answer
    peak = ctx.rss.peak(since=started)
    files = (response.json() or {}).get("files") or []
    too_large = any(f.get("code") == "too_large" for f in files)
    stored = [f for f in files if f.get("status") == "stored"]
    bounded = peak < ctx.args.max_rss_mb << 20
    detail = (f"{len(archive) >> 10} KiB zip of {megabytes} MiB zeros: {response.describe()}, entries "
              f"{[f.get('code') or f.get('status') for f in files]}; RSS during it {mib(peak)} "
              f"(before {mib(before)})")
    return response.status in (413, 207, 422) and too_large and not stored and bounded, detail


def huge_png_attack(ctx):
    side = 12000
    image = huge_png(side)
    # Through an API token this time (an integrator's path into the same upload).
    token = ctx.create_token("hostile-upload", "study_upload")
    client = ctx.http(bearer=token, timeout=120)
    response = client.upload([("huge.png", image)], {"patient_id": f"HOSTILE-{ctx.suffix}-png"})
    files = (response.json() or {}).get("files") or []
    detail = (f"{len(image) >> 10} KiB PNG of {side}×{side} grey (API token): {response.describe()}, "
              f"entries {[f.get('code') or f.get('status') for f in files]}")
    return response.status == 413, detail


def report_amplification(ctx):
    client = ctx.signed_in("doctor")
    study, instance = ctx.doctor_study()
    measurement = ctx.measure(client, study, instance)
    # The same report citing it once is valid: the ownership attack makes one and fails the run otherwise,
    # so a refusal here is for the 10 000 citations.
    report = report_with([measurement] * 10_000)
    response = client.post(f"/api/v1/studies/{study}/reports", {"report": report})
    detail = f"a finding citing measurement {measurement} 10 000 times: {response.describe()}"
    return response.status in (400, 422), detail


def tiny_spacing(ctx):
    client = ctx.signed_in("doctor")
    response = client.upload([("tiny.png", small_png())],
                             {"patient_id": f"HOSTILE-{ctx.suffix}-spacing", "pixel_spacing_mm": "0.00001"})
    return response.status == 400, f"pixel_spacing_mm=0.00001: {response.describe()}"


def ownership(ctx):
    doctor = ctx.signed_in("doctor")
    study, instance = ctx.upload_study(doctor, f"HOSTILE-{ctx.suffix}-2")
    measurement = ctx.measure(doctor, study, instance)
    created = doctor.post(f"/api/v1/studies/{study}/reports", {"report": report_with([measurement])})
    if created.status != 201:
        raise RuntimeError(f"the first radiologist's draft answered {created.describe()}")
    report_id = created.json()["id"]
    other = ctx.signed_in("other")
    deleted = other.delete(f"/api/v1/measurements/{measurement}")
    edited = other.put(f"/api/v1/reports/{report_id}", {"report": report_with([])})
    detail = f"another radiologist deletes measurement {measurement}: {deleted.describe()}; edits draft " \
             f"{report_id}: {edited.describe()}"
    return deleted.status == 403 and edited.status == 403, detail


def admin_reach(ctx):
    admin = ctx.admin()
    token = admin.post("/api/v1/admin/tokens", {"name": f"mine-{ctx.suffix}", "scopes": ["report_read"]})
    user = admin.post("/api/v1/admin/users", {"username": f"adm-made-{ctx.suffix}", "display_name": "x",
                                               "role": "radiologist", "password": "Hx" + secrets.token_urlsafe(18)})
    ok = all(r.status == 403 and r.code() == "console_required" for r in (token, user))
    return ok, f"admin makes a report_read token: {token.describe()}; a radiologist account: {user.describe()}"


def metrics_methods(ctx):
    count = 50 if ctx.short else 200
    methods = ["".join(random.choices(string.ascii_uppercase, k=100)) for _ in range(count)]

    def send(method):
        request = f"{method} /api/v1/studies HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        return raw_status(ctx.host, ctx.port, request)

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(send, methods))
    all_4xx = all(400 <= c < 500 for c in codes)
    metrics = ctx.admin().get("/metrics")
    text = metrics.body.decode(errors="replace")
    leaked = sum(m in text for m in methods)
    labels = set(re.findall(r'method="([^"]*)"', text))
    odd = labels - STANDARD_METHODS
    seen = {}
    for c in codes:
        seen[c or "no answer"] = seen.get(c or "no answer", 0) + 1
    answers = ", ".join(f"{n}× {c}" for c, n in sorted(seen.items(), key=str))
    detail = (f"{count} requests with random 100-byte methods: {answers}; /metrics {metrics.status}: "
              f"{leaked} of those methods in it, method labels {sorted(labels)}")
    # `other` shows only if the router saw them (a parser that refuses them first is fine too).
    return all_4xx and metrics.status == 200 and leaked == 0 and not odd, detail


def chat_burst(ctx):
    ready = ctx.http(source_ip=HONEST_IP).get("/readyz").json() or {}
    if not (ready.get("model") or {}).get("loaded"):
        raise Skip("no model loaded")
    count, cap = 20, ctx.args.chat_max_per_client
    client = ctx.signed_in("doctor")
    study, _ = ctx.doctor_study()
    start, statuses_in = threading.Barrier(count), threading.Barrier(count)

    def ask(_):
        conn = client.connection(timeout=120)
        headers = {"Content-Type": "application/json", **client.auth_headers("POST")}
        # Long answers (a few seconds each on the tiny model): every question is in before any finishes.
        body = json.dumps({"message": "描述", "max_new_tokens": 300, "min_new_tokens": 300,
                           "temperature": 1.0}).encode()
        try:
            start.wait(timeout=30)
            conn.request("POST", f"/api/v1/studies/{study}/chat", body=body, headers=headers)
            response = conn.getresponse()
            status = response.status
            first = b"" if status == 200 else response.read()
            try:
                statuses_in.wait(timeout=30)  # every answer's status before any stream is read out
            except threading.BrokenBarrierError:
                pass
            if status == 200:
                response.read()
            return Response(status, response.headers, first)
        except (OSError, http.client.HTTPException, threading.BrokenBarrierError) as e:
            return Response(0, error=f"{type(e).__name__}: {e}")
        finally:
            conn.close()

    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(ask, range(count)))
    answered = sum(r.status == 200 for r in answers)
    refused = sum(r.status == 429 and r.code() == "too_many_questions" for r in answers)
    detail = f"{count} parallel questions from one account: {statuses(answers)} (at most {cap} may be answered)"
    return 0 < answered <= cap and answered + refused == count, detail


def slowloris(ctx):
    count, cap = (280 if ctx.short else 300), ctx.args.per_client_cap
    expected_closed = max(0, count - cap)
    selector = selectors.DefaultSelector()
    sockets, closed, opened = [], set(), 0
    opened_at = time.monotonic()
    open_by = opened_at + 10  # a server that accepts this slowly has failed already; stay bounded
    try:
        for i in range(count):
            if time.monotonic() > open_by:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind((ATTACKER_IP, 0))
            s.settimeout(2)
            try:
                s.connect((ctx.host, ctx.port))
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                closed.add(i)  # refused or reset at once: closed too
                continue
            s.setblocking(False)
            selector.register(s, selectors.EVENT_READ, i)
        opened = len(sockets)
        # Which of them does the server close within 2 s?
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                i = key.data
                try:
                    data = key.fileobj.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data or data.startswith(b"HTTP/1.1 503"):
                    closed.add(i)
                    selector.unregister(key.fileobj)
        time.sleep(1)  # hold on a little longer while /healthz is asked from the other address
        held_until = time.monotonic()
        probes = ctx.probe.between(opened_at, held_until)
    finally:
        for s in sockets:
            s.close()
        selector.close()
    # The places come back once the slow connections are gone.
    back, waited = False, time.monotonic()
    while not back and time.monotonic() - waited < 3:
        back = ctx.http(timeout=2).get("/healthz").status == 200
        if not back:
            time.sleep(0.1)
    probes_ok = bool(probes) and all(ok for _, ok in probes)
    slowest = max((s for s, _ in probes), default=float("nan")) * 1000
    detail = (f"{opened} of {count} connections opened (within 10 s) from {ATTACKER_IP}, each with a half-sent "
              f"request head: {len(closed)} closed within 2 s (expected ≥ {expected_closed}, over the per-client "
              f"cap {cap}); /healthz from {HONEST_IP} meanwhile "
              f"{sum(ok for _, ok in probes)}/{len(probes)} answered, slowest {slowest:.1f} ms; "
              f"{ATTACKER_IP} served again afterwards: {'yes' if back else 'no'}")
    return opened == count and len(closed) >= expected_closed and probes_ok and back, detail


# ---------------------------------------------------------------------------------------------------------
# DICOM: hostile peers on the DICOM port (raw PDUs, PS3.8 §9.3)

VERIFICATION = "1.2.840.10008.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


def dicom_port(ctx):
    ready = ctx.http(source_ip=HONEST_IP, timeout=5).get("/readyz").json()
    listening = (ready.get("dicom") or {}).get("listening")
    if not listening:
        raise Skip("the server has no DICOM listener")
    return int(listening.rsplit(":", 1)[1]), ready["dicom"]["ae_title"]


def dicom_peer(ctx):
    """The AE title the attacks call from: a known peer, added at the console once per run."""
    ae = f"HOSTILE{ctx.suffix}".upper()[:16]
    if getattr(ctx, "dicom_ae", None) != ae:
        ctx.cli("dicom", "peer", "add", ae, "--host", "127.0.0.1")
        ctx.dicom_ae = ae
    return ae


def item(kind, body):
    return struct.pack(">BBH", kind, 0, len(body)) + body


def associate_rq(called, calling, abstract=VERIFICATION, max_pdu=16384):
    def ae(title):
        return title.encode().ljust(16)
    context = bytes([1, 0, 0, 0]) + item(0x30, abstract.encode()) + item(0x40, EXPLICIT_LE.encode())
    body = (struct.pack(">HH", 1, 0) + ae(called) + ae(calling) + bytes(32)
            + item(0x10, b"1.2.840.10008.3.1.1.1") + item(0x20, context)
            + item(0x50, item(0x51, struct.pack(">I", max_pdu))))
    return struct.pack(">BBI", 1, 0, len(body)) + body


def read_pdu(sock, limit=1 << 20):
    """(type, body) of the next PDU, or None when the connection ends first."""
    head = recv_exactly(sock, 6)
    if head is None:
        return None
    kind, _, length = struct.unpack(">BBI", head)
    if length > limit:
        raise RuntimeError(f"a PDU of {length} bytes")
    body = recv_exactly(sock, length)
    return None if body is None else (kind, body)


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def element(tag_element, value):
    return struct.pack("<HHI", 0, tag_element, len(value)) + value


def uid(text):
    raw = text.encode()
    return raw + b"\0" * (len(raw) % 2)


def c_store_rq(sop_class, sop_instance, message_id=1):
    body = (element(0x0002, uid(sop_class)) + element(0x0100, struct.pack("<H", 1))
            + element(0x0110, struct.pack("<H", message_id)) + element(0x0700, struct.pack("<H", 0))
            + element(0x0800, struct.pack("<H", 0)) + element(0x1000, uid(sop_instance)))
    return element(0x0000, struct.pack("<I", len(body))) + body


def p_data(context_id, is_command, is_last, data):
    header = (1 if is_command else 0) | (2 if is_last else 0)
    pdv = struct.pack(">IBB", len(data) + 2, context_id, header) + data
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv


def command_status(pdu_body):
    """The Status (0000,0900) of the command set in a P-DATA PDU's first value."""
    data = pdu_body[6:]
    at = 0
    while at + 8 <= len(data):
        group, el, length = struct.unpack("<HHI", data[at:at + 8])
        if (group, el) == (0, 0x0900):
            return struct.unpack("<H", data[at + 8:at + 10])[0]
        at += 8 + length
    return None


def dicom_echo_works(ctx, port, our_ae):
    """Whether a known peer's association is accepted and its C-ECHO answered with success."""
    rq = associate_rq(our_ae, dicom_peer(ctx))
    with socket.create_connection((ctx.host, port), timeout=10) as sock:
        sock.sendall(rq)
        answer = read_pdu(sock)
        if answer is None or answer[0] != 2:
            return False
        echo = (element(0x0002, uid(VERIFICATION)) + element(0x0100, struct.pack("<H", 0x30))
                + element(0x0110, struct.pack("<H", 1)) + element(0x0800, struct.pack("<H", 0x0101)))
        sock.sendall(p_data(1, True, True, element(0x0000, struct.pack("<I", len(echo))) + echo))
        response = read_pdu(sock)
        sock.sendall(struct.pack(">BBI", 5, 0, 4) + bytes(4))  # A-RELEASE-RQ
        return response is not None and response[0] == 4 and command_status(response[1]) == 0


def store_association(ctx, port, our_ae):
    """A socket with an accepted association on the CR storage context (presentation context 1)."""
    rq = associate_rq(our_ae, dicom_peer(ctx), abstract=CR_STORAGE)
    sock = socket.create_connection((ctx.host, port), timeout=10)
    sock.sendall(rq)
    answer = read_pdu(sock)
    if answer is None or answer[0] != 2:
        sock.close()
        raise RuntimeError(f"the store association was not accepted: {describe_pdu(answer)}")
    return sock


def worklist_size(ctx):
    doctor = ctx.signed_in("dicom-reader")
    return len(doctor.get("/api/v1/studies?limit=500").json()["studies"])


def dicom_huge_pdu(ctx):
    """An association request whose PDU claims 4 GiB: refused at the header, nothing allocated for it."""
    port, our_ae = dicom_port(ctx)
    before = ctx.rss.read()
    with socket.create_connection((ctx.host, port), timeout=10) as sock:
        sock.sendall(struct.pack(">BBI", 1, 0, 0xFFFFFFFF) + b"\0" * 64)
        try:
            answer = read_pdu(sock)
        except (ConnectionResetError, TimeoutError, socket.timeout) as e:
            answer = e
    grew = ctx.rss.read() - before
    closed = answer is None or isinstance(answer, ConnectionResetError) or (
        isinstance(answer, tuple) and answer[0] in (3, 7))
    echo = dicom_echo_works(ctx, port, our_ae)
    ok = closed and grew < 64 << 20 and echo
    return ok, f"answer {describe_pdu(answer)}, RSS grew {mib(grew)}, C-ECHO afterwards {works(echo)}"


def works(ok):
    return "works" if ok else "FAILS"


def describe_pdu(answer):
    if isinstance(answer, tuple):
        return {2: "A-ASSOCIATE-AC", 3: "A-ASSOCIATE-RJ", 7: "A-ABORT"}.get(answer[0], f"PDU type {answer[0]}")
    return "connection closed" if answer is None else type(answer).__name__


def dicom_truncated(ctx):
    """Truncated PDUs: an association request cut short, then a C-STORE whose data set stops half-way (one
    fragment whole, the next cut) and the connection drops. Nothing lands, nothing half-written stays, the
    next peer is served."""
    port, our_ae = dicom_port(ctx)
    studies_before = worklist_size(ctx)
    rq = associate_rq(our_ae, dicom_peer(ctx))
    with socket.create_connection((ctx.host, port), timeout=10) as sock:
        sock.sendall(rq[:len(rq) // 2])
    with store_association(ctx, port, our_ae) as sock:
        instance = f"2.25.{uuid.uuid4().int}"
        sock.sendall(p_data(1, True, True, c_store_rq(CR_STORAGE, instance)))
        # A first fragment of the data set whole (the server spools it to disk), the second cut short.
        sock.sendall(p_data(1, False, False, b"\x08\x00\x16\x00UI" + bytes(5000)))
        whole = p_data(1, False, True, bytes(5000))
        sock.sendall(whole[:len(whole) // 3])
    time.sleep(0.5)
    tmp = Path(ctx.args.data_dir) / "tmp"
    leftovers = [p.name for p in tmp.glob("dicom-*")] if tmp.is_dir() else []
    landed = worklist_size(ctx) - studies_before
    echo = dicom_echo_works(ctx, port, our_ae)
    ok = landed == 0 and not leftovers and echo
    return ok, f"{landed} studies landed, received files left: {leftovers or 'none'}, C-ECHO afterwards {works(echo)}"


def dicom_lying_sop_class(ctx):
    """A C-STORE on the CR context whose command says CR while the data set is a CT slice: answered A900,
    nothing stored."""
    port, our_ae = dicom_port(ctx)
    ct = Path(__file__).resolve().parent.parent / "target/fixtures/dicom/synthetic/ct_phantom.dcm"
    if not ct.is_file():
        raise Skip("needs target/fixtures (scripts/test.sh makes them)")
    raw = ct.read_bytes()
    meta_length = struct.unpack("<I", raw[140:144])[0]  # (0002,0000) UL in explicit VR LE after the preamble
    data_set = raw[144 + meta_length:]
    instance = re.search(rb"\x08\x00\x18\x00UI(..)", data_set)
    length = struct.unpack("<H", instance.group(1))[0]
    ct_instance = data_set[instance.end():instance.end() + length].rstrip(b"\0").decode()
    studies_before = worklist_size(ctx)
    with store_association(ctx, port, our_ae) as sock:
        sock.sendall(p_data(1, True, True, c_store_rq(CR_STORAGE, ct_instance)))
        chunk = 16000  # under the smallest PDU a server may ask for (its A-ASSOCIATE-AC says which)
        for at in range(0, len(data_set), chunk):
            sock.sendall(p_data(1, False, at + chunk >= len(data_set), data_set[at:at + chunk]))
        response = read_pdu(sock)
        status = command_status(response[1]) if response and response[0] == 4 else None
        sock.sendall(struct.pack(">BBI", 5, 0, 4) + bytes(4))  # A-RELEASE-RQ
        read_pdu(sock)
    landed = worklist_size(ctx) - studies_before
    ok = status == 0xA900 and landed == 0
    return ok, f"status {status and hex(status)}, {landed} studies landed"


def c_find_rq(message_id=1):
    body = (element(0x0002, uid(STUDY_ROOT_FIND)) + element(0x0100, struct.pack("<H", 0x20))
            + element(0x0110, struct.pack("<H", message_id)) + element(0x0700, struct.pack("<H", 0))
            + element(0x0800, struct.pack("<H", 0)))
    return element(0x0000, struct.pack("<I", len(body))) + body


def find_answers(ctx, port, our_ae, calling, identifier):
    """The statuses of a C-FIND's responses, in order, with the identifier given (explicit VR LE)."""
    rq = associate_rq(our_ae, calling, abstract=STUDY_ROOT_FIND)
    statuses = []
    with socket.create_connection((ctx.host, port), timeout=10) as sock:
        sock.sendall(rq)
        answer = read_pdu(sock)
        if answer is None or answer[0] != 2:
            return [describe_pdu(answer)]
        sock.sendall(p_data(1, True, True, c_find_rq()))
        sock.sendall(p_data(1, False, True, identifier))
        while True:
            response = read_pdu(sock)
            if response is None or response[0] != 4:
                statuses.append(describe_pdu(response))
                break
            if response[1][5] & 1 == 0:
                continue  # a match's data set
            statuses.append(command_status(response[1]))
            if statuses[-1] not in (0xFF00, 0xFF01):
                break
        sock.sendall(struct.pack(">BBI", 5, 0, 4) + bytes(4))  # A-RELEASE-RQ
    return statuses


def dicom_find_probes(ctx):
    """C-FIND from a peer that may only send images: refused (0124), nothing told. From a peer that may
    query, an identifier whose patient name claims 4 GiB: an error status, nothing allocated for it."""
    port, our_ae = dicom_port(ctx)
    level = struct.pack("<HH", 0x0008, 0x0052) + b"CS" + struct.pack("<H", 6) + b"STUDY "
    anyone = level + struct.pack("<HH", 0x0010, 0x0010) + b"PN" + struct.pack("<H", 2) + b"* "
    stranger = find_answers(ctx, port, our_ae, dicom_peer(ctx), anyone)
    querier = f"HOSTILEQ{ctx.suffix}".upper()[:16]
    ctx.cli("dicom", "peer", "add", querier, "--host", "127.0.0.1", "--query")
    lying = level + struct.pack("<HH", 0x0010, 0x0010) + b"UT\0\0" + struct.pack("<I", 0xFFFFFFF0) + b"ZHANG"
    before = ctx.rss.read()
    lie = find_answers(ctx, port, our_ae, querier, lying)
    grew = ctx.rss.read() - before
    echo = dicom_echo_works(ctx, port, our_ae)
    ok = stranger == [0x0124] and len(lie) == 1 and lie[0] in (0xA900, 0xC000) and grew < 64 << 20 and echo
    shown = [hex(s) if isinstance(s, int) else s for s in stranger + lie]
    return ok, f"statuses {shown}, RSS grew {mib(grew)}, C-ECHO afterwards {works(echo)}"


def dicom_silent(ctx):
    """A connection that never sends: closed after the idle time-out, its place freed."""
    port, our_ae = dicom_port(ctx)
    dicom_peer(ctx)
    idle = ctx.args.dicom_idle_secs
    with socket.create_connection((ctx.host, port), timeout=idle + 10) as sock:
        started = time.monotonic()
        try:
            ended = sock.recv(1)
        except (ConnectionResetError, TimeoutError, socket.timeout) as e:
            ended = e
        waited = time.monotonic() - started
    echo = dicom_echo_works(ctx, port, our_ae)
    ok = ended == b"" and waited < idle + 5 and echo
    return ok, f"closed after {waited:.1f} s (idle time-out {idle} s), C-ECHO afterwards {works(echo)}"


def dicom_flood(ctx):
    """200 associations at once: the server's cap is taken, the rest are rejected (A-ASSOCIATE-RJ), not
    left hanging; once they close, a peer is served again."""
    port, our_ae = dicom_port(ctx)
    count = 200
    answers = {}
    sockets = []
    rq = associate_rq(our_ae, dicom_peer(ctx))

    def open_one(i):
        sock = socket.create_connection((ctx.host, port), timeout=20)
        sockets.append(sock)
        sock.sendall(rq)
        try:
            answers[i] = describe_pdu(read_pdu(sock))
        except OSError as e:
            answers[i] = type(e).__name__

    with ThreadPoolExecutor(max_workers=50) as pool:
        list(pool.map(open_one, range(count)))
    tally = {k: list(answers.values()).count(k) for k in set(answers.values())}
    for sock in sockets:
        sock.close()
    time.sleep(1.0)
    echo = dicom_echo_works(ctx, port, our_ae)
    ok = (tally.get("A-ASSOCIATE-AC", 0) <= ctx.args.dicom_max_associations
          and tally.get("A-ASSOCIATE-AC", 0) + tally.get("A-ASSOCIATE-RJ", 0) == count and echo)
    return ok, f"{tally}; C-ECHO afterwards {works(echo)}"


ATTACKS = [
    ("audit-flood", audit_flood),
    ("parallel-guessing", parallel_guessing),
    ("zip-bomb", zip_bomb_attack),
    ("huge-png", huge_png_attack),
    ("report-amplification", report_amplification),
    ("tiny-spacing", tiny_spacing),
    ("uid-injection", "needs DICOM files (covered by the Rust tests)"),
    ("ownership", ownership),
    ("admin-reach", admin_reach),
    ("metrics-methods", metrics_methods),
    ("chat-burst", chat_burst),
    ("dicom-huge-pdu", dicom_huge_pdu),
    ("dicom-truncated", dicom_truncated),
    ("dicom-lying-sop-class", dicom_lying_sop_class),
    ("dicom-find-probes", dicom_find_probes),
    ("dicom-silent", dicom_silent),
    ("dicom-flood", dicom_flood),
    # Last: the slow connections take the attacker address's places until they are closed.
    ("slowloris", slowloris),
    ("open-redirect", "checked by the web app's tests"),
    ("csv-formula", "checked by the Rust tests (audit and report exports)"),
]


# ---------------------------------------------------------------------------------------------------------


def mib(n):
    return f"{n / (1 << 20):.1f} MiB"


def server_alive(ctx):
    return ctx.http(source_ip=HONEST_IP, timeout=5).get("/healthz").status == 200


def run_attack(ctx, name, attack):
    """One attack's line; 'refused', 'not refused' or 'skipped'."""
    if isinstance(attack, str):
        print(f"skipped      {name}: {attack}", flush=True)
        return "skipped"
    started = time.monotonic()
    try:
        refused, detail = attack(ctx)
    except Skip as why:
        print(f"skipped      {name}: {why}", flush=True)
        return "skipped"
    except Exception as e:  # noqa: BLE001 — a broken attack is a failed check, with its reason
        refused, detail = False, f"the attack could not run: {type(e).__name__}: {e}"
    if not server_alive(ctx):
        refused, detail = False, detail + "; /healthz no longer answers"
    detail += f" [{time.monotonic() - started:.1f} s]"
    print(f"{'refused     ' if refused else 'NOT REFUSED '} {name}: {detail}", flush=True)
    return "refused" if refused else "not refused"


def loopback(url):
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "http" or parsed.hostname not in ("127.0.0.1", "localhost") or not parsed.port:
        sys.exit(f"--url must be http://127.0.0.1:PORT or http://localhost:PORT (loopback only), not {url}")
    return "127.0.0.1", parsed.port


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="http://127.0.0.1:PORT of the running server (none: start one)")
    parser.add_argument("--pid", type=int, help="the server's process id (for its RSS)")
    parser.add_argument("--data-dir", help="the server's data dir")
    parser.add_argument("--bin", default="target/release/medgemma-x", help="the medgemma-x binary (for the CLI)")
    parser.add_argument("--short", action="store_true", help="smaller counts: under a minute")
    parser.add_argument("--model-dir", help="for a server of the script's own: the checkpoint it loads (chat-burst)")
    parser.add_argument("--max-rss-mb", type=int, default=1536, help="peak RSS allowed (default 1.5 GiB)")
    parser.add_argument("--max-p99-ms", type=float, default=50.0, help="/healthz p99 allowed")
    parser.add_argument("--per-client-cap", type=int, default=256, help="the server's --max-connections-per-client")
    parser.add_argument("--chat-max-per-client", type=int, default=4, help="the server's --chat-max-per-client")
    parser.add_argument("--dicom-idle-secs", type=int, default=60, help="the server's --dicom-idle-timeout-secs")
    parser.add_argument("--dicom-max-associations", type=int, default=32,
                        help="the server's --dicom-max-associations")
    args = parser.parse_args()
    if args.url is None:
        with own_server(args.bin, args.model_dir) as (url, pid, data_dir):
            args.url, args.pid, args.data_dir = url, pid, data_dir
            args.dicom_idle_secs = OWN_DICOM_IDLE_SECS
            return attack_server(args)
    if args.pid is None or args.data_dir is None:
        sys.exit("--url needs --pid and --data-dir")
    return attack_server(args)


# A server of the script's own closes silent DICOM connections soon, so that dicom-silent is quick.
OWN_DICOM_IDLE_SECS = 3


@contextlib.contextmanager
def own_server(binary, model_dir):
    """A release server of the script's own on a fresh data dir and a free loopback port (with the model in
    `model_dir`, if given), stopped (SIGTERM) at the end: (url, pid, data dir)."""
    with tempfile.TemporaryDirectory(prefix="hostile-") as data_dir:
        model = ["--model-dir", model_dir] if model_dir else []
        server = subprocess.Popen([binary, "serve", "--data-dir", data_dir, "--bind", "127.0.0.1:0",
                                   "--dicom-bind", "127.0.0.1:0", "--dicom-idle-timeout-secs", str(OWN_DICOM_IDLE_SECS),
                                   "--log-format", "json", *model], stdout=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            url = None
            while url is None and time.monotonic() < deadline:
                line = server.stdout.readline()
                if not line:
                    sys.exit(f"the server exited before listening (exit {server.poll()})")
                try:
                    fields = json.loads(line).get("fields", {})
                except ValueError:
                    continue
                if fields.get("message") == "listening":
                    url = f"http://{fields['addr']}"
            if url is None:
                sys.exit("the server did not listen within 60 s")
            # Keep reading its log so that a full pipe never blocks it.
            threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
            print(f"started {binary} on {url} (pid {server.pid}, data dir {data_dir})")
            yield url, server.pid, data_dir
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def attack_server(args):
    host, port = loopback(args.url)
    if not Path(f"/proc/{args.pid}/status").exists():
        sys.exit(f"no process {args.pid}")
    if not Path(args.bin).exists():
        sys.exit(f"no CLI binary at {args.bin} (--bin)")
    try:  # 300 slow sockets and the rest: more open files than some shells allow
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    except (ImportError, ValueError, OSError):
        pass

    rss = RssWatcher(args.pid)
    probe = HealthProbe(host, port)
    ctx = Context(args, host, port, rss)
    ctx.probe = probe
    if not server_alive(ctx):
        sys.exit(f"the server at {args.url} does not answer /healthz from {HONEST_IP}")
    rss.start()
    probe.start()
    time.sleep(0.3)
    started = time.monotonic()
    outcomes = [run_attack(ctx, name, attack) for name, attack in ATTACKS]
    probe.stop.set()
    rss.stop.set()
    probe.join(timeout=10)
    rss.join(timeout=2)

    latencies = [s for _, s, _ in probe.samples]
    failed_probes = sum(not ok for _, _, ok in probe.samples)
    p50, p99, worst = (percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000,
                       max(latencies, default=float("nan")) * 1000)
    peak = rss.peak()
    first = rss.samples[0][1] if rss.samples else 0
    counts = {k: outcomes.count(k) for k in ("refused", "not refused", "skipped")}
    print(f"summary: peak RSS {mib(peak)} (at start {mib(first)}); /healthz from {HONEST_IP} p50 {p50:.1f} ms, "
          f"p99 {p99:.1f} ms, max {worst:.1f} ms over {len(latencies)} probes ({failed_probes} failed); "
          f"{counts['refused']} refused, {counts['not refused']} not refused, {counts['skipped']} skipped; "
          f"{time.monotonic() - started:.1f} s")

    why = []
    if counts["not refused"]:
        why.append(f"{counts['not refused']} attack(s) not refused")
    if failed_probes:
        why.append(f"{failed_probes} /healthz probe(s) failed")
    if not latencies or not p99 < args.max_p99_ms:
        why.append(f"/healthz p99 {p99:.1f} ms is not under {args.max_p99_ms:g} ms")
    if rss.gone:
        why.append(f"the server process {args.pid} went away")
    if not peak or peak >= args.max_rss_mb << 20:
        why.append(f"peak RSS {mib(peak)} is not under {args.max_rss_mb} MiB")
    if why:
        print("FAILED: " + "; ".join(why))
        return 1
    print("OK: every attack refused, /healthz stayed fast, memory stayed bounded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
