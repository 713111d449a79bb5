"""Start real Celery worker processes against the test database and the configured broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent

# Short leases so a killed worker's chunk is reaped within seconds, not a minute.
FAST_JOB_SETTINGS = {
    "JOB_LEASE_SECONDS": "4",
    "JOB_HEARTBEAT_SECONDS": "1",
    "JOB_REAPER_SECONDS": "1",
    "JOB_PENDING_RESEND_SECONDS": "30",
    "WORKER_HEARTBEAT_SECONDS": "1",
}


def test_database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(FAST_JOB_SETTINGS)
    env["DJANGO_SETTINGS_MODULE"] = "evalsite.settings_test"
    env["DATABASE_URL"] = test_database_url()
    env["PYTHONPATH"] = str(ROOT)
    return env


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def kill(self) -> None:
        """SIGKILL the worker's main process only, as a crashed machine or OOM killer would."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP the worker's whole process group: it writes nothing until thawed or killed."""
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        stop_process_group(self.proc, timeout=15)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def stop_process_group(proc: subprocess.Popen[bytes], *, timeout: float) -> None:
    """SIGTERM a process started in its own group, then SIGKILL whatever of the group is left
    (a worker's pool children, a server's threads) after `timeout` seconds."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def purge_broker() -> None:
    from evalsite.celery import app

    with app.connection_for_write() as conn:
        for queue in ("default", "torch", "onnx", "coreml"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # an undeclared queue has nothing to purge
                pass


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []
    purge_broker()

    def start(
        *,
        queues: str = "default",
        beat: bool = True,
        include: str = "tests.jobkinds",
        extra_env: dict[str, str] | None = None,
        concurrency: int = 1,
        cwd: Path = ROOT,
    ) -> WorkerProcess:
        n = len(started)
        log = tmp_path / f"worker-{n}.log"
        if beat and "maintenance" not in queues.split(","):
            queues = f"{queues},maintenance"  # the reaper that beat schedules runs there
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "evalsite",
            "worker",
            "-Q",
            queues,
            "-c",
            str(concurrency),
            "-n",
            f"test{n}-{os.getpid()}@%h",
            "-l",
            "info",
            "--without-mingle",
            "--without-gossip",
        ]
        if include:
            cmd += ["--include", include]
        if beat:
            cmd += ["-B", "-s", str(tmp_path / f"beat-{n}")]
        env = worker_env()
        env.update(extra_env or {})
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,  # the project is importable from anywhere: worker_env sets PYTHONPATH
            env=env,
            stdout=open(log, "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = WorkerProcess(proc, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(
    check: Callable[[], Any], timeout: float, what: str, worker: WorkerProcess | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    detail = f"\n--- worker log ---\n{worker.output()[-4000:]}" if worker else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")


def wait_for_done_hook(
    job_pk: int, worker: WorkerProcess | None = None, timeout: float = 30
) -> None:
    """Wait until the finished job's final hook has run and been recorded.

    The hook runs after the commit that finishes the job (`jobs._after_commit_hook`), so a job
    already reads DONE a moment before its hook's effects exist: read them after this.
    """
    from evalsite.core.models import Job

    wait_for(
        lambda: Job.objects.filter(pk=job_pk, hook_ran_at__isnull=False).exists(),
        timeout,
        f"job {job_pk}'s final hook to run",
        worker,
    )
