"""Celery tasks of the core: the generic chunk runner and the reaper.

Tasks stay thin: they take ids, call a service and return. `RecordingTask` records a failure the
task could not handle itself on the row that owns the work, so pages show *why*.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Task, shared_task
from celery.exceptions import Retry, SoftTimeLimitExceeded
from django.apps import apps
from django.conf import settings
from django.db import close_old_connections

from evalsite.core import faults, jobs, reaper
from evalsite.core.models import Chunk

log = logging.getLogger(__name__)


class RecordingTask(Task):  # type: ignore[misc]
    """Base task: on an unhandled failure, write the error on the owning row.

    A task names its owner with `owner_model = "app_label.Model"`; its first positional argument
    is that row's primary key, and the row has an `error` field (and `status`, set to
    `owner_failed_status` unless that is None). `run_chunk` owns its `core.Chunk` and records
    only the error: the lease and the reaper decide whether the chunk is retried or failed.
    """

    abstract = True
    owner_model: str | None = None
    owner_failed_status: str | None = "failed"

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        if not self.owner_model or not args:
            return
        try:
            model = apps.get_model(self.owner_model)
            fields = {"error": f"{type(exc).__name__}: {exc}"}
            if self.owner_failed_status is not None:
                fields["status"] = self.owner_failed_status
            model._default_manager.filter(pk=args[0]).update(**fields)
        except Exception:  # recording must never mask the original failure
            log.exception("could not record failure of %s on %s", self.name, self.owner_model)


def _retry_later(
    task: RecordingTask, chunk_id: int, resume: dict[str, Any] | None, exc: BaseException
) -> Retry:
    """Send this chunk's message again after a backoff (the database is unreachable, or the
    worker's storage is failing, now).

    The broker, not the database, carries the retry, so a message pulled during an outage is
    not lost; `resume` lets the retried task take back a chunk it had claimed without counting
    a new attempt. Capped at a quarter of the lease so the chunk is resumed before the reaper
    would take it away.
    """
    faults.close_broken_connection()
    failures = task.request.retries + 1
    delay = faults.backoff_seconds(failures, cap=max(0.5, settings.JOB_LEASE_SECONDS / 4))
    what = "storage failing" if faults.is_storage_fault(exc) else "database unreachable"
    log.warning("chunk %s: %s (%s); retry %d in %.2f s", chunk_id, what, exc, failures,
                delay)  # fmt: skip
    retry: Retry = task.retry(args=[chunk_id], kwargs={"resume": resume}, countdown=delay, exc=exc)
    return retry


# max_retries=None on the task itself: `retry(max_retries=None)` would fall back to the class
# default of 3, and a fourth blip would drop the message (the chunk then waits for its lease).
@shared_task(
    bind=True,
    base=RecordingTask,
    name="evalsite.core.tasks.run_chunk",
    max_retries=None,
    owner_model="core.Chunk",
    owner_failed_status=None,
)
def run_chunk(self: RecordingTask, chunk_id: int, resume: dict[str, Any] | None = None) -> str:
    """Claim one chunk, run its kind's handler under a heartbeat, record the outcome.

    A database error or a storage fault (disk full, I/O error) is infrastructure, not the
    chunk's: once the chunk is claimed, this worker waits it out in place, holding the lease,
    and runs the handler again under the same attempt (`_ride_out`), up to
    JOB_MAX_INTERRUPTIONS times; after that a database error counts as a failed attempt and a
    storage fault fails the job naming the worker's disk (never an item, never the model).
    Before the claim, and when even recording the outcome fails, the task retries through the
    broker and takes the chunk back without a new attempt (`jobs.chunk_resume`).
    """
    close_old_connections()
    worker = jobs.worker_name()
    try:
        chunk = jobs.chunk_resume(chunk_id=chunk_id, worker=worker, previous=resume) if resume \
            else None  # fmt: skip
        chunk = chunk or jobs.chunk_claim(chunk_id=chunk_id, worker=worker)
    except Exception as exc:
        if faults.infrastructure_fault(exc):
            raise _retry_later(self, chunk_id, resume, exc) from exc
        raise
    if chunk is None:
        return "not claimed"  # duplicate message, finished or cancelled: nothing to do
    kind = jobs.job_kind(chunk.job.kind)
    try:
        try:
            with jobs.heartbeat(chunk) as lost:
                result = _ride_out(chunk, lost, lambda: kind.run_chunk(chunk))
                jobs.raise_if_lost(lost)
                completed = _ride_out(chunk, lost, lambda: jobs.chunk_complete(chunk, result))
        except jobs.ChunkLost:
            return "lost"
        except SoftTimeLimitExceeded:
            jobs.chunk_fail(chunk, "time limit exceeded", retry=False)
            return "time limit"
        except Exception as exc:
            log.exception("chunk %s failed", chunk_id)
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            if faults.is_storage_fault(exc):
                # Persistent: the work is sound and another attempt here would only fail the
                # same way, so the job (and its run) fails naming the worker's disk.
                jobs.chunk_fail(chunk, faults.storage_fault_text(exc, worker, detail), retry=False)
                return "failed"
            jobs.chunk_fail(chunk, detail, retry=getattr(exc, "retryable", True))
            return "failed"
        return "done" if completed else "lost"
    except Exception as exc:
        if faults.infrastructure_fault(exc):
            owner = {"claimed_by": chunk.claimed_by, "attempts": chunk.attempts}
            raise _retry_later(self, chunk_id, owner, exc) from exc
        raise


T = TypeVar("T")


def _ride_out(chunk: Chunk, lost: threading.Event, step: Callable[[], T]) -> T:
    """Run `step`; on an infrastructure fault wait (backoff) and run it again, in place.

    Why not through the broker: a retried message waits behind every message queued meanwhile,
    with no heartbeat, so on a busy queue the lease ran out and the reaper requeued the chunk as
    a new attempt; a database blip cost an attempt. Here the heartbeat thread keeps the lease
    (it renews as soon as the database answers), and losing the chunk meanwhile stops the wait.
    """
    while True:
        try:
            return step()
        except Exception as exc:
            fault = faults.infrastructure_fault(exc)
            if fault is None or chunk.interruptions >= settings.JOB_MAX_INTERRUPTIONS:
                raise
            chunk.interruptions += 1
            faults.close_broken_connection()
            delay = faults.backoff_seconds(
                chunk.interruptions, cap=max(0.5, settings.JOB_LEASE_SECONDS / 4)
            )
            log.warning("chunk %s: %s (%s); running it again here in %.2f s, same attempt "
                        "(interruption %d of at most %d)", chunk.pk,
                        "storage failing" if fault == "storage" else "database unreachable", exc,
                        delay, chunk.interruptions, settings.JOB_MAX_INTERRUPTIONS)  # fmt: skip
            if lost.wait(delay):
                raise jobs.ChunkLost("chunk taken over while waiting out a fault") from exc
            jobs.chunk_note_interruption(chunk)


@shared_task(name="evalsite.core.tasks.reap_jobs", ignore_result=True)
def reap_jobs() -> dict[str, int]:
    """Beat sends this to the `maintenance` queue, whose worker runs no chunks (never starved)."""
    close_old_connections()
    try:
        return reaper.reap()
    except Exception as exc:
        if faults.is_infrastructure_error(exc):  # the next period tries again; say why, briefly
            faults.close_broken_connection()
            log.warning("reaper pass skipped: database unreachable (%s)", exc)
            return {}
        raise


__all__ = ["Chunk", "RecordingTask", "reap_jobs", "run_chunk"]
