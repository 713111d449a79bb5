"""Crash-safe job primitive: create, claim, heartbeat, complete, fail, reap, cancel.

Every long job in the platform (dataset import, model validation, evaluation) is a `Job` of a
registered kind, split into `Chunk`s. Invariants:

* A chunk is claimed only by a conditional UPDATE (pending -> running); a duplicate message for
  the same chunk finds nothing to claim and does nothing.
* A running chunk holds a lease its worker renews by heartbeat. The reaper re-enqueues a chunk whose
  lease expired (its worker died) until `max_attempts`, then fails it with the reason.
* Completing a chunk is conditional on still owning it (same worker, same attempt), and the job
  completes once, by the single UPDATE that moves it from running to done.
* Chunk handlers must be idempotent (write results with unique keys, overwrite on retry).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from evalsite.core.models import Chunk, Job, JobStatus, ServiceHeartbeat

log = logging.getLogger(__name__)

ChunkHandler = Callable[[Chunk], dict[str, Any] | None]
JobHook = Callable[[Job], None]


@dataclass(frozen=True)
class JobKind:
    name: str
    run_chunk: ChunkHandler
    on_done: JobHook | None = None
    on_failed: JobHook | None = None
    on_cancelled: JobHook | None = None


_KINDS: dict[str, JobKind] = {}


def register_job_kind(
    name: str,
    *,
    run_chunk: ChunkHandler,
    on_done: JobHook | None = None,
    on_failed: JobHook | None = None,
    on_cancelled: JobHook | None = None,
) -> JobKind:
    kind = JobKind(name, run_chunk, on_done, on_failed, on_cancelled)
    _KINDS[name] = kind
    return kind


def job_kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise LookupError(f"no job kind {name!r} is registered (known: {sorted(_KINDS)})") from None


class ChunkLost(Exception):
    """The worker no longer owns its chunk (lease expired and re-claimed, or job cancelled)."""


# --- create / enqueue ------------------------------------------------------------------------


def job_create(
    *,
    kind: str,
    chunks: Iterable[dict[str, Any]],
    queue: str = "default",
    payload: dict[str, Any] | None = None,
    created_by: Any = None,
    max_attempts: int | None = None,
) -> Job:
    """Create a job and its chunks in one transaction; chunks are enqueued after commit."""
    job_kind(kind)  # fail early on an unknown kind
    attempts = max_attempts or settings.JOB_MAX_ATTEMPTS
    with transaction.atomic():
        job = Job.objects.create(kind=kind, payload=payload or {}, created_by=created_by)
        rows = [
            Chunk(job=job, index=i, queue=queue, payload=p, max_attempts=attempts)
            for i, p in enumerate(chunks)
        ]
        if not rows:
            raise ValueError("a job needs at least one chunk")
        Chunk.objects.bulk_create(rows)
        transaction.on_commit(lambda: job_enqueue_pending(job_id=job.pk))
    return job


def job_enqueue_pending(*, job_id: int) -> int:
    chunks = list(Chunk.objects.filter(job_id=job_id, status=JobStatus.PENDING))
    for chunk in chunks:
        chunk_send(chunk)
    return len(chunks)


def chunk_send(chunk: Chunk) -> None:
    from evalsite.core.tasks import run_chunk

    Chunk.objects.filter(pk=chunk.pk).update(enqueued_at=timezone.now())
    run_chunk.apply_async(args=[chunk.pk], queue=chunk.queue)


# --- claim / heartbeat / finish --------------------------------------------------------------


def chunk_claim(*, chunk_id: int, worker: str) -> Chunk | None:
    """Claim a pending chunk of a live job; None when another worker has it or it is finished."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.JOB_LEASE_SECONDS)
    with transaction.atomic():
        updated = Chunk.objects.filter(
            pk=chunk_id,
            status=JobStatus.PENDING,
            job__status__in=[JobStatus.PENDING, JobStatus.RUNNING],
        ).update(
            status=JobStatus.RUNNING,
            attempts=F("attempts") + 1,
            claimed_by=worker,
            claimed_at=now,
            heartbeat_at=now,
            lease_expires_at=lease,
            error="",
        )
        if updated != 1:
            return None
        chunk = Chunk.objects.select_related("job").get(pk=chunk_id)
        Job.objects.filter(pk=chunk.job_id, status=JobStatus.PENDING).update(
            status=JobStatus.RUNNING, started_at=now
        )
    return chunk


def _owned(chunk: Chunk) -> Q:
    return Q(
        pk=chunk.pk,
        status=JobStatus.RUNNING,
        claimed_by=chunk.claimed_by,
        attempts=chunk.attempts,
    )


def chunk_renew(chunk: Chunk) -> bool:
    """Extend the lease; False when the chunk was taken away or its job was cancelled."""
    now = timezone.now()
    updated = Chunk.objects.filter(_owned(chunk), job__status=JobStatus.RUNNING).update(
        heartbeat_at=now, lease_expires_at=now + timedelta(seconds=settings.JOB_LEASE_SECONDS)
    )
    return updated == 1


@contextmanager
def heartbeat(chunk: Chunk) -> Iterator[threading.Event]:
    """Renew the chunk's lease from a background thread while the body runs.

    Yields an event that is set when ownership was lost, so long handlers can stop early
    (`raise_if_lost`).
    """
    stop = threading.Event()
    lost = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.JOB_HEARTBEAT_SECONDS):
                if not chunk_renew(chunk):
                    lost.set()
                    return
        except Exception:  # a transient DB error: the lease simply runs down
            log.exception("heartbeat for chunk %s failed", chunk.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"chunk-{chunk.pk}-heartbeat", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join(timeout=5)


def raise_if_lost(lost: threading.Event) -> None:
    if lost.is_set():
        raise ChunkLost("this worker no longer owns the chunk")


def chunk_complete(chunk: Chunk, result: dict[str, Any] | None = None) -> bool:
    """Mark the chunk done if still owned; finish the job when it was the last one."""
    now = timezone.now()
    with transaction.atomic():
        updated = Chunk.objects.filter(_owned(chunk)).update(
            status=JobStatus.DONE, finished_at=now, result=result or {}, lease_expires_at=None
        )
        if updated != 1:
            return False
        _finish_job_if_complete(chunk.job_id)
    return True


def _finish_job_if_complete(job_id: int) -> None:
    open_chunks = Chunk.objects.filter(job_id=job_id).exclude(status=JobStatus.DONE).exists()
    if open_chunks:
        return
    won = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        status=JobStatus.DONE, finished_at=timezone.now()
    )
    if won:
        job = Job.objects.get(pk=job_id)
        hook = job_kind(job.kind).on_done
        if hook:
            # After commit: hooks may enqueue follow-up work that must see the finished job.
            transaction.on_commit(lambda: hook(job))


def chunk_fail(chunk: Chunk, reason: str, *, retry: bool = True) -> None:
    """Record a failed attempt; retry while attempts remain, else fail the chunk and its job."""
    now = timezone.now()
    with transaction.atomic():
        current = Chunk.objects.filter(_owned(chunk)).first()
        if current is None:
            return  # someone else owns it now
        if retry and current.attempts < current.max_attempts:
            Chunk.objects.filter(pk=chunk.pk).update(
                status=JobStatus.PENDING, error=reason, lease_expires_at=None, claimed_by=""
            )
            transaction.on_commit(lambda: chunk_send(current))
            return
        Chunk.objects.filter(pk=chunk.pk).update(
            status=JobStatus.FAILED, error=reason, finished_at=now, lease_expires_at=None
        )
        _fail_job(
            chunk.job_id,
            f"chunk {current.index} failed after {current.attempts} attempt(s): {reason}",
        )


def _fail_job(job_id: int, reason: str) -> None:
    won = Job.objects.filter(pk=job_id, status__in=[JobStatus.PENDING, JobStatus.RUNNING]).update(
        status=JobStatus.FAILED, error=reason, finished_at=timezone.now()
    )
    if won:
        Chunk.objects.filter(job_id=job_id, status=JobStatus.PENDING).update(
            status=JobStatus.CANCELLED
        )
        job = Job.objects.get(pk=job_id)
        hook = job_kind(job.kind).on_failed
        if hook:
            transaction.on_commit(lambda: hook(job))


def job_cancel(*, job: Job, reason: str = "cancelled by user") -> bool:
    with transaction.atomic():
        won = Job.objects.filter(
            pk=job.pk, status__in=[JobStatus.PENDING, JobStatus.RUNNING]
        ).update(status=JobStatus.CANCELLED, error=reason, finished_at=timezone.now())
        if not won:
            return False
        Chunk.objects.filter(job=job, status__in=[JobStatus.PENDING, JobStatus.RUNNING]).update(
            status=JobStatus.CANCELLED, lease_expires_at=None
        )
        job.refresh_from_db()
        hook = job_kind(job.kind).on_cancelled
        if hook:
            transaction.on_commit(lambda: hook(job))
    return True


# --- reaper ------------------------------------------------------------------------------


def jobs_reap() -> dict[str, int]:
    """Re-enqueue chunks whose worker died (lease expired); resend long-pending chunks.

    Runs from Celery beat every JOB_REAPER_SECONDS. Safe to run concurrently: every change is a
    conditional UPDATE on the state it observed.
    """
    now = timezone.now()
    requeued = failed = resent = 0
    expired = Chunk.objects.filter(status=JobStatus.RUNNING, lease_expires_at__lt=now)
    for chunk in expired.select_related("job"):
        with transaction.atomic():
            still = Chunk.objects.filter(
                pk=chunk.pk,
                status=JobStatus.RUNNING,
                attempts=chunk.attempts,
                lease_expires_at__lt=now,
            )
            who = chunk.claimed_by or "unknown worker"
            if chunk.attempts >= chunk.max_attempts:
                reason = f"worker lost: lease expired on {who} after {chunk.attempts} attempt(s)"
                if still.update(status=JobStatus.FAILED, error=reason, finished_at=now):
                    failed += 1
                    _fail_job(chunk.job_id, f"chunk {chunk.index}: {reason}")
            elif still.update(
                status=JobStatus.PENDING,
                error=f"lease expired on {who}; re-enqueued",
                lease_expires_at=None,
                claimed_by="",
            ):
                requeued += 1
                transaction.on_commit(lambda c=chunk: chunk_send(c))
    stale = now - timedelta(seconds=settings.JOB_PENDING_RESEND_SECONDS)
    for chunk in Chunk.objects.filter(
        status=JobStatus.PENDING,
        job__status__in=[JobStatus.PENDING, JobStatus.RUNNING],
    ).filter(Q(enqueued_at__lt=stale) | Q(enqueued_at__isnull=True)):
        chunk_send(chunk)
        resent += 1
    stats = {"requeued": requeued, "failed": failed, "resent": resent}
    ServiceHeartbeat.objects.update_or_create(
        name="beat", defaults={"last_seen": now, "detail": stats}
    )
    return stats


def job_progress(job: Job) -> dict[str, int]:
    """Chunk counts by status, straight from the database (progress bars read this)."""
    counts = dict(
        Chunk.objects.filter(job=job)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    total = sum(counts.values())
    return {"total": total, **{s.value: counts.get(s.value, 0) for s in JobStatus}}


_PROCESS_TOKEN = uuid.uuid4().hex[:8]


def worker_name() -> str:
    """Identity written into `claimed_by`: host, pid and a random suffix per process."""
    return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_TOKEN}"
