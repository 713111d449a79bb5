"""`manage.py demo` (what `make demo` runs) starts web, workers and beat; Ctrl-C stops them all."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.no_services, pytest.mark.worker]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_serves_login_reports_a_live_worker_and_leaves_no_orphans(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update(
        {
            "VAR_DIR": str(tmp_path / "var"),
            "DEBUG": "true",
            "DJANGO_SETTINGS_MODULE": "evalsite.settings",
            "PYTHONUNBUFFERED": "1",
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--skip-data", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        assert proc.stdout
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Stop with Ctrl-C" in line:
                break
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}/" in output, output
        for user in ("annotator", "researcher", "manager", "admin"):
            assert re.search(rf"^\s+{user}\s+\S+", output, re.M), output
        pids = [int(p) for p in re.findall(r"started \w+ \(pid (\d+)\)", output)]
        assert len(pids) == 4  # web, worker, maintenance worker, beat

        login = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
        assert "/login/" in login.url and b"Log in" in login.read()
        health = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10))
        assert health["database"]["ok"] and health["broker"]["ok"]
        assert health["queues"]["default"]["live"] >= 1
        until = time.monotonic() + 90
        while not health["queues"]["maintenance"]["live"] and time.monotonic() < until:
            time.sleep(1)
            health = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", 10))
        assert health["queues"]["maintenance"]["live"] >= 1, "the reaper's own worker runs"
        css = urllib.request.urlopen(f"http://127.0.0.1:{port}/static/css/site.css", timeout=10)
        assert css.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(lines) + rest
    assert "All demo processes stopped." in rest
    deadline = time.monotonic() + 10
    while any(group_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in pids if group_alive(pid)], "orphaned demo processes"
    # What an operator reads: no ERROR for processes the demo stopped itself, a time on every
    # line of every log (web, workers, beat), and no request for a favicon that does not exist.
    logs = {p.name: p.read_text(errors="replace") for p in (tmp_path / "var" / "log").glob("*.log")}
    assert set(logs) == {"web.log", "worker.log", "maintenance.log", "beat.log"}
    stamp = re.compile(r"^\[?\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")
    for name, text in logs.items():
        lines = [line for line in text.splitlines() if line.strip()]
        assert not [line for line in lines if re.search(r"\bERROR\b", line)], (name, text)
        assert not [line for line in lines if not stamp.match(line)], (name, text)
