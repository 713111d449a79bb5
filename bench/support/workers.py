"""Real Celery worker processes for benches, and the memory their process trees hold.

A bench that measures the queue / database / sandbox path as users get it starts workers the way
an operator does (`celery -A evalsite worker`, one process each, in its own session so it and its
children stop together) and waits until they report live: a worker that runs models does once its
sandbox has imported torch (`evalsite.core.bootsteps.SandboxReadyStep`), so a worker's start-up is
not counted in what it sustains.

Everything runs in a throw-away VAR_DIR (SQLite file, filesystem broker, media) unless
DATABASE_URL names a PostgreSQL server: then a private database on it, dropped by `teardown`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUEUES = "default,torch,onnx"


def setup_django(var_dir: Path, *, private_db: str) -> str:
    """Configure and migrate; returns "PostgreSQL" or "SQLite". With DATABASE_URL set to a
    PostgreSQL server, the bench gets its own database `private_db` on it (recreated empty)."""
    os.environ["VAR_DIR"] = str(var_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "evalsite.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    url = os.environ.get("DATABASE_URL", "")
    engine = "SQLite"
    if url.startswith("postgres"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {private_db}")
            conn.execute(f"CREATE DATABASE {private_db}")
        os.environ["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + private_db
        engine = "PostgreSQL"
    else:
        os.environ.pop("DATABASE_URL", None)  # the VAR_DIR's own SQLite file
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    return engine


def teardown_database() -> None:
    """Drop the private PostgreSQL database `setup_django` made (nothing to do for SQLite)."""
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        return
    import psycopg

    name = connection.settings_dict["NAME"]
    connections.close_all()
    server = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")


def database_bytes() -> int:
    """Size of the bench's database: PostgreSQL's own count, or the SQLite file and its WAL."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            return int(cursor.fetchone()[0])
    name = Path(str(connection.settings_dict["NAME"]))
    return files_bytes(name.parent.glob(name.name + "*"))


def files_bytes(paths: Iterable[Path]) -> int:
    """Total size of the files among `paths`; one removed meanwhile (SQLite's rollback journal
    comes and goes with each transaction, a worker's temporary files too) counts nothing."""
    total = 0
    for path in paths:
        try:
            if path.is_file():
                total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total


def start_workers(
    n: int, *, var_dir: Path, tag: str, env: dict[str, str] | None = None
) -> list[subprocess.Popen[bytes]]:
    """`n` worker processes of concurrency 1 on the model queues; logs in `var_dir`."""
    full = {**os.environ, "WORKER_HEARTBEAT_SECONDS": "1", **(env or {})}
    procs = []
    for i in range(n):
        log = open(var_dir / f"worker-{tag}-{i}.log", "wb")  # noqa: SIM115
        cmd = [sys.executable, "-m", "celery", "-A", "evalsite", "worker", "-Q", QUEUES, "-c",
               "1", "-n", f"bench{i}-{tag}-{os.getpid()}@%h", "-l", "warning", "--without-mingle",
               "--without-gossip"]  # fmt: skip
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=full, stdout=log, stderr=log,
                                      start_new_session=True))  # fmt: skip
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each worker's session (its pool and sandbox children too), SIGKILL after 20 s."""
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    from evalsite.core.models import WorkerHeartbeat

    WorkerHeartbeat.objects.all().delete()


def wait_live(n: int, timeout: float = 120) -> float:
    """Seconds until `n` workers report live on the torch queue."""
    from evalsite.core.selectors import workers_by_queue

    began = time.monotonic()
    while time.monotonic() < began + timeout:
        if workers_by_queue()["torch"].live >= n:
            return time.monotonic() - began
        time.sleep(0.1)
    raise SystemExit(f"{n} worker(s) did not come up in {timeout:.0f} s")


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        # The command name is in parentheses and may hold spaces: the fields follow the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out.setdefault(ppid, []).append(int(entry.name))
    return out


def tree_rss_bytes(pid: int, children: dict[int, list[int]] | None = None) -> int:
    """Resident memory of `pid` and all its descendants (VmRSS from /proc; 0 once it exited)."""
    kids = _children() if children is None else children
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
        todo += kids.get(current, [])
    return total


def trees_rss_bytes(pids: list[int]) -> list[int]:
    """`tree_rss_bytes` of several trees from one walk of /proc."""
    kids = _children()
    return [tree_rss_bytes(pid, kids) for pid in pids]
