"""Read-only queries for the health endpoint and the System page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# The project's app (evalsite.celery), which Celery's Django fix-up makes every thread's
# default; core does not import that module, which imports core.
from celery import current_app
from django.conf import settings
from django.db import connection
from django.utils import timezone

from evalsite.core.models import Chunk, Job, JobStatus, ServiceHeartbeat, WorkerHeartbeat

# A worker counts as live while its heartbeat is younger than this many heartbeat periods.
LIVE_AFTER_MISSED_BEATS = 3
# Beat counts as running while the reaper ran within this many reaper periods.
BEAT_LATE_AFTER_PERIODS = 4

QUEUE_HINTS = {
    "coreml": "no macOS worker connected",
    "maintenance": "no maintenance worker: the reaper does not run",
}


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def database_status() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "vendor": connection.vendor, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "vendor": connection.vendor}


def broker_status() -> dict[str, Any]:
    url = redact_url(settings.CELERY_BROKER_URL)
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            transport = conn.transport_cls
    except Exception as exc:
        return {"ok": False, "url": url, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "url": url, "transport": str(transport)}


def live_workers() -> list[WorkerHeartbeat]:
    cutoff = timezone.now() - timedelta(
        seconds=settings.WORKER_HEARTBEAT_SECONDS * LIVE_AFTER_MISSED_BEATS
    )
    return list(WorkerHeartbeat.objects.filter(last_seen__gte=cutoff))


@dataclass(frozen=True)
class QueueWorkers:
    """The live workers that consume one queue; `note` says what is missing when none does."""

    live: int
    workers: tuple[str, ...]
    note: str = ""

    def as_dict(self) -> dict[str, int | list[str] | str]:
        """As /healthz reports it (`note` only for a queue nobody consumes)."""
        out: dict[str, int | list[str] | str] = {"live": self.live, "workers": list(self.workers)}
        return {**out, "note": self.note} if not self.live else out


#: What a queue's entry is when no worker consumes it.
NO_WORKERS = QueueWorkers(0, (), "no live worker")


def workers_by_queue(workers: list[WorkerHeartbeat] | None = None) -> dict[str, QueueWorkers]:
    workers = live_workers() if workers is None else workers
    out = {}
    for queue in settings.WORKER_QUEUES:
        names = tuple(sorted(w.hostname for w in workers if queue in w.queues))
        note = "" if names else QUEUE_HINTS.get(queue, NO_WORKERS.note)
        out[queue] = QueueWorkers(len(names), names, note)
    return out


def beat_status() -> dict[str, Any]:
    row = ServiceHeartbeat.objects.filter(name="beat").first()
    if row is None:
        return {"ok": False, "last_run": None, "note": "the reaper has not run yet"}
    late = timezone.now() - row.last_seen > timedelta(
        seconds=settings.JOB_REAPER_SECONDS * BEAT_LATE_AFTER_PERIODS
    )
    status: dict[str, Any] = {"ok": not late, "last_run": row.last_seen.isoformat(), **row.detail}
    if late:
        status["note"] = "beat is late: is the beat process running?"
    return status


def health() -> tuple[dict[str, Any], int]:
    """Everything /healthz reports, and its HTTP status (503 only when the DB does not answer)."""
    db = database_status()
    broker = broker_status()
    if not db["ok"]:
        return {"status": "down", "database": db, "broker": broker}, 503
    queues = workers_by_queue()
    beat = beat_status()
    degraded = [name for name, ok in (("broker", broker["ok"]), ("beat", beat["ok"])) if not ok]
    degraded += [f"queue:{q}" for q, info in queues.items() if not info.live and q != "coreml"]
    workers = worker_storage()
    degraded += [
        f"storage:{w['hostname']}" for w in workers if w["storage"].get("reachable") is False
    ]
    body = {
        "status": "degraded" if degraded else "ok",
        "degraded": degraded,
        "database": db,
        "broker": broker,
        "queues": {name: info.as_dict() for name, info in queues.items()},
        "workers": workers,
        "beat": beat,
    }
    return body, 200


def worker_storage(workers: list[WorkerHeartbeat] | None = None) -> list[dict[str, Any]]:
    """Per live worker: its queues and what its last heartbeat said about storage (backend,
    reachable, cache bytes/limit; `evalsite.core.files.storage_probe`)."""
    workers = live_workers() if workers is None else workers
    return [{"hostname": w.hostname, "queues": list(w.queues), "storage": dict(w.storage or {})}
            for w in workers]  # fmt: skip


def inspect_active(timeout: float = 1.0) -> dict[str, Any] | None:
    """Tasks each worker is running, from remote control; None when no worker answers in time.

    Extra detail for the System page only: a busy or remote worker may not answer, so nothing
    else depends on it.
    """
    try:
        replies = current_app.control.inspect(timeout=timeout).active()
    except Exception:
        return None
    if not replies:
        return None
    return {
        host: [{"name": t.get("name"), "args": t.get("args"), "id": t.get("id")} for t in tasks]
        for host, tasks in replies.items()
    }


def job_overview(limit: int = 20) -> dict[str, Any]:
    return {
        "pending_chunks": Chunk.objects.filter(status=JobStatus.PENDING).count(),
        "running_chunks": Chunk.objects.filter(status=JobStatus.RUNNING).count(),
        "failed_jobs": list(Job.objects.filter(status=JobStatus.FAILED)[:limit]),
        "active_jobs": list(
            Job.objects.filter(status__in=[JobStatus.PENDING, JobStatus.RUNNING])[:limit]
        ),
    }
