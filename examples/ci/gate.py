#!/usr/bin/env python3
"""Upload a model version and gate it in one call; exit with the release report's code.

The same as gate.sh with only the Python standard library (settings in the same environment
variables; see gate.sh): 0 every gate passes, 3 a gate fails, 4 no gate fails but one lacks
evidence, 1 error.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"set {name}")
    return value


def multipart(fields: list[tuple[str, str]], files: list[tuple[str, Path]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for name, path in files:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        out += path.read_bytes() + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def call(url: str, headers: dict[str, str], data: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, {"error": {"code": "not_json", "message": text[:500]}}


def main() -> int:
    base = env("PLATFORM_URL").rstrip("/")
    auth = {"Authorization": f"Token {env('PLATFORM_TOKEN')}"}
    key = (
        os.environ.get("GATE_KEY")
        or os.environ.get("GITHUB_RUN_ID")
        or os.environ.get("CI_PIPELINE_ID", "")
    )
    fields = [("dataset", s) for s in env("DATASETS").split()]
    if os.environ.get("BASELINE"):
        fields.append(("baseline", os.environ["BASELINE"]))
    files: list[tuple[str, Path]] = []
    if os.environ.get("CANDIDATE"):
        fields.append(("candidate", os.environ["CANDIDATE"]))
    else:
        fields += [("family", env("FAMILY")), ("version", env("VERSION")),
                   ("spec", Path(env("SPEC_FILE")).read_text())]  # fmt: skip
        files.append(("file", Path(env("MODEL_FILE"))))
    body, content_type = multipart(fields, files)
    headers = {**auth, "Content-Type": content_type, **({"Idempotency-Key": key} if key else {})}
    code, doc = call(f"{base}/releases/api/gate/", headers, body)
    if code not in (200, 202):
        print(f"gate request refused (HTTP {code}): {json.dumps(doc)}", file=sys.stderr)
        return 1
    url = doc["url"]
    print(f"gate {doc['id']}: {url}")
    deadline = time.monotonic() + float(os.environ.get("TIMEOUT_SECONDS", "7200"))
    while doc["status"] not in ("done", "failed"):
        if time.monotonic() > deadline:
            print(f"gave up waiting; the gate goes on: {url}", file=sys.stderr)
            return 1
        time.sleep(float(os.environ.get("POLL_SECONDS", "5")))
        code, doc = call(url, auth)
        if code != 200:
            print(f"poll failed (HTTP {code}): {json.dumps(doc)}", file=sys.stderr)
            return 1
    if doc["status"] == "failed":
        print(f"gate failed: {doc['error']}", file=sys.stderr)
        return 1
    print(f"verdict: {doc['verdict']}  report: {doc['report_url']}")
    for gate in doc["failing"]:
        where = f" [{gate['dataset']}]" if gate.get("dataset") else ""
        print(f"  [{gate['status']}] {gate['name']}{where}: {gate['text']}")
    return int(doc["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
