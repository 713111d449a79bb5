"""`make demo`: migrate, load demo data, start web + worker + maintenance worker + beat, evaluate.

Each installed app may provide a `demo` module with `setup(log)` (runs before the processes start,
e.g. import a set, register models) and `after_start(log)` (runs once a worker is live, e.g. start
evaluations and wait for them). Ctrl-C stops every process this command started, children included.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from evalsite.core.services import demo_users_load

STOP_GRACE_SECONDS = 15
#: A line that starts with a date and time (our logging format, Celery's and gunicorn's own).
STAMPED = re.compile(rb"^\[?\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")


def timestamped_copy(source: IO[bytes] | None, path: Path, name: str) -> None:
    """Copy a process's output into its log, dating each line that comes undated.

    Celery prints its banner, its "Warm shutdown" line and Python warnings straight to the
    stream, bypassing logging; an operator reading worker, beat and web logs side by side needs
    a time on every line. Runs until the process closes its output.
    """
    if source is None:
        return
    with open(path, "ab", buffering=0) as out:
        for line in iter(source.readline, b""):
            if not STAMPED.match(line):
                now = datetime.now()
                stamp = now.strftime("%Y-%m-%d %H:%M:%S") + f",{now.microsecond // 1000:03d}"
                line = f"{stamp} {name}: ".encode() + line
            out.write(line)


class Command(BaseCommand):
    help = "Run the demo platform: web server, a real Celery worker and beat, with demo data."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--once",
            action="store_true",
            help="stop everything after the demo is ready (smoke test)",
        )
        parser.add_argument("--skip-data", action="store_true", help="skip the apps' demo steps")

    def handle(self, *args: Any, **opts: Any) -> None:
        base = Path(settings.BASE_DIR)
        log = self.stdout.write
        log("==> migrating the database")
        call_command("migrate", interactive=False, verbosity=0)
        users = demo_users_load(base / "fixtures" / "demo_users.json")
        modules = [] if opts["skip_data"] else self._demo_modules()
        for module in modules:
            if hasattr(module, "setup"):
                module.setup(log)

        procs = self._start_processes(base, opts["host"], opts["port"])
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        url = f"http://{opts['host']}:{opts['port']}/"
        try:
            self._wait_healthy(url, procs)
            for module in modules:
                if hasattr(module, "after_start"):
                    module.after_start(log)
            log(self.style.SUCCESS(f"\nThe platform is running at {url}"))
            log("Demo users (username / password):")
            for spec in users:
                role = "admin" if spec.get("superuser") else ", ".join(spec["roles"])
                log(f"  {spec['username']:<11} {spec['password']:<20} {role}")
            log("Health: " + url + "healthz    Stop with Ctrl-C.")
            while not stopping and not opts["once"]:
                dead = [name for name, p in procs.items() if p.poll() is not None]
                if dead:
                    raise CommandError(f"{', '.join(dead)} exited unexpectedly; see var/log/")
                time.sleep(0.5)
        finally:
            self._stop_processes(procs)
            log("All demo processes stopped.")

    def _demo_modules(self) -> list[Any]:
        modules = []
        for config in apps.get_app_configs():
            try:
                modules.append(importlib.import_module(f"{config.name}.demo"))
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.demo":
                    raise
        return modules

    def _start_processes(
        self, base: Path, host: str, port: int
    ) -> dict[str, subprocess.Popen[bytes]]:
        logs = Path(settings.VAR_DIR) / "log"
        logs.mkdir(parents=True, exist_ok=True)
        bin_dir = Path(sys.executable).parent
        commands = {
            "web": [
                str(bin_dir / "gunicorn"),
                "evalsite.wsgi",
                "--bind",
                f"{host}:{port}",
                "--workers",
                "2",
                "--timeout",
                "120",
            ],
            "worker": [
                str(bin_dir / "celery"),
                "-A",
                "evalsite",
                "worker",
                "-Q",
                "default,torch,onnx",
                "--concurrency",
                "1",
                "-n",
                "demo@%h",
                "-l",
                "info",
            ],
            # The reaper's own worker: it consumes only the maintenance queue, so a long chunk
            # on the work worker never delays a lease check.
            "maintenance": [
                str(bin_dir / "celery"),
                "-A",
                "evalsite",
                "worker",
                "-Q",
                "maintenance",
                "--concurrency",
                "1",
                "-n",
                "maintenance@%h",
                "-l",
                "info",
            ],
            "beat": [str(bin_dir / "celery"), "-A", "evalsite", "beat", "-l", "info"],
        }
        procs = {}
        for name, cmd in commands.items():
            # Own session per process: Ctrl-C reaches only this command, which then stops each
            # process group in order, pool children included (no orphans).
            procs[name] = subprocess.Popen(
                cmd, cwd=base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            pump = threading.Thread(
                target=timestamped_copy,
                args=(procs[name].stdout, logs / f"{name}.log", name),
                name=f"log-{name}",
                daemon=True,
            )
            pump.start()
            self.stdout.write(f"==> started {name} (pid {procs[name].pid}), log var/log/{name}.log")
        return procs

    def _wait_healthy(self, url: str, procs: dict[str, subprocess.Popen[bytes]]) -> None:
        deadline = time.monotonic() + 120
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise CommandError(
                        f"{name} exited with {proc.returncode}; see var/log/{name}.log"
                    )
            try:
                with urllib.request.urlopen(url + "healthz", timeout=5) as resp:
                    last = json.load(resp)
                if last["database"]["ok"] and last["queues"]["default"]["live"]:
                    return
            except OSError:
                pass
            time.sleep(1)
        raise CommandError(f"the platform did not become healthy in time: {last}")

    def _stop_processes(self, procs: dict[str, subprocess.Popen[bytes]]) -> None:
        # SIGTERM to each main process only: Celery and gunicorn then stop their own children
        # (a warm shutdown). Signalling the whole group would kill the pool children under
        # their parent, which logs each as an ERROR "exited with signal 15" that nobody caused.
        for proc in procs.values():
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # the whole group: pool children that outlived their parent too
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
