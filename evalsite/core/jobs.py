"""Crash-safe job primitive: create, claim, heartbeat, complete, fail, cancel.

Every long job in the platform (dataset import, model validation, evaluation) is a `Job` of a
registered kind, split into `Chunk`s. Invariants:

* A chunk is claimed only by a conditional UPDATE (pending -> running); a duplicate message for
  the same chunk finds nothing to claim and does nothing.
* A running chunk holds a lease its worker renews by heartbeat. The reaper re-enqueues a chunk whose
  lease expired (its worker died) until `max_attempts`, then fails it with the reason.
* Completing a chunk is conditional on still owning it (same worker, same attempt). The check
  "was this the last open chunk?" runs with the job row locked (SELECT … FOR UPDATE), so two
  chunks finishing at the same instant cannot both miss each other's update (READ COMMITTED);
  the job completes once, by the single UPDATE that moves it from running to done, and the
  reaper finishes any job whose chunks are all terminal anyway (belt and braces).
* The kind's final hook (on_done/on_failed/on_cancelled) is claimed with a conditional UPDATE
  and recorded when it returns; the reaper runs a hook whose worker died before it ran.
* Database errors are infrastructure, not the chunk's fault: the heartbeat retries with backoff,
  and the task layer resumes an interrupted chunk without consuming an attempt (up to
  JOB_MAX_INTERRUPTIONS in a row, then it counts like any failure).
* Chunk handlers must be idempotent (write results with unique keys, overwrite on retry).

The reaper (`evalsite/core/reaper.py`) sits on top of this module and calls only its public
functions; this module never imports the reaper, so either can change its internals alone.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from evalsite.core.faults import (
    backoff_seconds,
    close_broken_connection,
    is_infrastructure_error,
)
from evalsite.core.models import Chunk, Job, JobStatus
from pipelines.payloads import JsonObject

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
    chunks: Iterable[JsonObject],
    queue: str = "default",
    payload: JsonObject | None = None,
    created_by: User | None = None,
    max_attempts: int | None = None,
    send: bool = True,
) -> Job:
    """Create a job and its chunks in one transaction; chunks are enqueued after commit.

    `send=False` leaves the chunks unsent for a caller that runs them itself (`job_run_here`);
    should that caller die before claiming them, the reaper sends them like any lost message.
    """
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
        if send:
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
            interruptions=0,
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
    (`raise_if_lost`). A failed renewal (database unreachable) is logged and retried with
    backoff, sooner than the regular period; the thread only ends when the body ends or the
    chunk is really lost, never on an error.
    """
    stop = threading.Event()
    lost = threading.Event()
    period = settings.JOB_HEARTBEAT_SECONDS

    def beat() -> None:
        failures = 0
        delay = period
        try:
            while not stop.wait(delay):
                try:
                    owned = chunk_renew(chunk)
                except Exception as exc:
                    failures += 1
                    delay = backoff_seconds(failures, cap=period)
                    log.warning(
                        "heartbeat for chunk %s failed (%d in a row, next try in %.2f s): %s",
                        chunk.pk,
                        failures,
                        delay,
                        exc,
                    )
                    close_broken_connection()
                    continue
                if failures:
                    log.info("chunk %s heartbeat back after %d failure(s)", chunk.pk, failures)
                failures, delay = 0, period
                if not owned:
                    lost.set()
                    return
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


def chunk_resume(*, chunk_id: int, worker: str, previous: dict[str, Any]) -> Chunk | None:
    """Take back a chunk whose run was interrupted by a database error, without a new attempt.

    `previous` names the owner the interrupted run had (`claimed_by`, `attempts`); None when
    the chunk moved on meanwhile (reaped, cancelled), and the caller claims it normally.
    """
    now = timezone.now()
    with transaction.atomic():
        updated = Chunk.objects.filter(
            pk=chunk_id,
            status=JobStatus.RUNNING,
            claimed_by=previous.get("claimed_by", ""),
            attempts=int(previous.get("attempts", -1)),
            job__status=JobStatus.RUNNING,
        ).update(
            claimed_by=worker,
            heartbeat_at=now,
            lease_expires_at=now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
            interruptions=F("interruptions") + 1,
        )
        if updated != 1:
            return None
        return Chunk.objects.select_related("job").get(pk=chunk_id)


def chunk_note_interruption(chunk: Chunk) -> None:
    """Count an interruption the owner rode out in place (shown with the chunk; best effort: the
    database may still be away, and the owner keeps its own count)."""
    try:
        Chunk.objects.filter(_owned(chunk)).update(interruptions=chunk.interruptions)
    except Exception as exc:
        if not is_infrastructure_error(exc):
            raise
        close_broken_connection()


def chunk_complete(chunk: Chunk, result: dict[str, Any] | None = None) -> bool:
    """Mark the chunk done if still owned; finish the job when it was the last one."""
    now = timezone.now()
    with transaction.atomic():
        updated = Chunk.objects.filter(_owned(chunk)).update(
            status=JobStatus.DONE,
            finished_at=now,
            result=result or {},
            lease_expires_at=None,
        )
        if updated != 1:
            return False
        job_finish_if_complete(job_id=chunk.job_id)
    return True


def _lock_job(job_id: int) -> Job | None:
    """Lock the job row until the transaction ends: one finisher at a time per job.

    Why: under READ COMMITTED two workers completing the last two chunks each see the other's
    chunk still running (uncommitted) and neither finishes the job. Holding the job row while
    checking makes the second wait for the first to commit, then see its chunk done.
    (SQLite has one writer at a time anyway; `select_for_update` is a no-op there.)
    """
    return Job.objects.select_for_update().filter(pk=job_id).first()


def job_finish_if_complete(*, job_id: int) -> None:
    """With the job row locked: finish it if no chunk is open (done, or failed if one failed).
    Call inside a transaction (the last chunk's completion, the reaper's pass)."""
    job = _lock_job(job_id)
    if job is None or job.is_finished:
        return
    states = set(Chunk.objects.filter(job_id=job_id).values_list("status", flat=True))
    if states & {JobStatus.PENDING, JobStatus.RUNNING}:
        return
    if JobStatus.FAILED in states:
        failed = Chunk.objects.filter(job_id=job_id, status=JobStatus.FAILED).first()
        why = f"chunk {failed.index}: {failed.error}" if failed else "a chunk failed"
        job_fail(job_id=job_id, reason=why)
        return
    still_open = Job.objects.filter(pk=job_id, status__in=[JobStatus.PENDING, JobStatus.RUNNING])
    if states - {JobStatus.DONE}:  # done and cancelled chunks only: someone cancelled it
        won = still_open.update(
            status=JobStatus.CANCELLED, finished_at=timezone.now(), error="cancelled"
        )
    else:
        won = still_open.update(status=JobStatus.DONE, finished_at=timezone.now())
    if won:
        _after_commit_hook(job_id)


# --- final hooks: claimed, run, recorded ----------------------------------------------------

_HOOKS = {
    JobStatus.DONE: "on_done",
    JobStatus.FAILED: "on_failed",
    JobStatus.CANCELLED: "on_cancelled",
}


def _after_commit_hook(job_id: int) -> None:
    # After commit: hooks may enqueue follow-up work that must see the finished job.
    transaction.on_commit(lambda: job_run_hook(job_id=job_id))


def _hook_for(job: Job) -> JobHook | None:
    name = _HOOKS.get(JobStatus(job.status))
    return getattr(job_kind(job.kind), name) if name else None


def job_run_hook(*, job_id: int) -> bool:
    """Run the finished job's hook unless it ran or is running elsewhere; True when it ran here.

    The claim is a conditional UPDATE of `hook_claimed_at`, so the worker that finished the job
    and the reaper cannot both run it; a claim older than the lease (its process died mid-hook)
    can be taken over. A hook that raises stays unrecorded and the reaper tries it again later,
    up to JOB_MAX_HOOK_ATTEMPTS tries (`_give_up_hook`).
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    claimed = (
        Job.objects.filter(
            pk=job_id,
            status__in=list(_HOOKS),
            hook_ran_at__isnull=True,
        )
        .filter(Q(hook_claimed_at__isnull=True) | Q(hook_claimed_at__lt=stale))
        .update(hook_claimed_at=now, hook_attempts=F("hook_attempts") + 1)
    )
    if not claimed:
        return False
    job = Job.objects.get(pk=job_id)
    try:
        kind_hook = _hook_for(job)
    except LookupError:
        log.error("job %s: %s hook of unknown kind %r not run", job_id, job.status, job.kind)
        return False
    if kind_hook is not None:
        try:
            kind_hook(job)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"[:2000]
            Job.objects.filter(pk=job_id, hook_claimed_at=now).update(hook_error=message)
            if job.hook_attempts >= settings.JOB_MAX_HOOK_ATTEMPTS:
                _give_up_hook(job, message)
            else:
                log.exception("the %s hook of job %s (%s) failed (try %d of %d); the reaper "
                              "retries", job.status, job_id, job.kind, job.hook_attempts,
                              settings.JOB_MAX_HOOK_ATTEMPTS)  # fmt: skip
            return False
    Job.objects.filter(pk=job_id).update(hook_ran_at=timezone.now())
    return True


def _give_up_hook(job: Job, message: str) -> None:
    """A hook that can never succeed (e.g. a value that cannot be stored) must not retry forever.

    A done hook that failed for good means the job's result was never made usable, so the job
    fails with the hook's message and its failed hook runs (that one tells the owner: an eval run
    is marked failed with the reason). A failed or cancelled hook has nothing left to fall back
    to: it is recorded as given up.
    """
    tries = job.hook_attempts
    if job.status == JobStatus.DONE:
        reason = f"its finishing step failed {tries} times: {message}"
        moved = Job.objects.filter(
            pk=job.pk, status=JobStatus.DONE, hook_ran_at__isnull=True
        ).update(status=JobStatus.FAILED, error=reason, hook_claimed_at=None, hook_attempts=0)
        log.error("job %s (%s): done hook given up after %d tries; job failed: %s", job.pk,
                  job.kind, tries, message)  # fmt: skip
        if moved:
            job_run_hook(job_id=job.pk)
        return
    Job.objects.filter(pk=job.pk, hook_ran_at__isnull=True).update(hook_ran_at=timezone.now())
    log.error("job %s (%s): %s hook given up after %d tries: %s", job.pk, job.kind, job.status,
              tries, message)  # fmt: skip


def chunk_fail(chunk: Chunk, reason: str, *, retry: bool = True) -> None:
    """Record a failed attempt; retry while attempts remain, else fail the chunk and its job.

    Both transitions are conditional UPDATEs on ownership (same worker, same attempt), like every
    other transition: a worker whose lease was taken over in the meantime changes nothing.
    """
    now = timezone.now()
    owned = Chunk.objects.filter(_owned(chunk))
    with transaction.atomic():
        if retry and owned.filter(attempts__lt=F("max_attempts")).update(
            status=JobStatus.PENDING, error=reason, lease_expires_at=None, claimed_by=""
        ):
            transaction.on_commit(lambda: chunk_send(chunk))
            return
        if owned.update(
            status=JobStatus.FAILED, error=reason, finished_at=now, lease_expires_at=None
        ):
            job_fail(
                job_id=chunk.job_id,
                reason=f"chunk {chunk.index} failed after {chunk.attempts} attempt(s): {reason}",
            )


def job_fail(*, job_id: int, reason: str) -> None:
    """Fail an open job with `reason` and cancel its pending chunks (its hook runs after commit);
    a job already finished is left as it is."""
    won = Job.objects.filter(pk=job_id, status__in=[JobStatus.PENDING, JobStatus.RUNNING]).update(
        status=JobStatus.FAILED, error=reason, finished_at=timezone.now()
    )
    if won:
        Chunk.objects.filter(job_id=job_id, status=JobStatus.PENDING).update(
            status=JobStatus.CANCELLED
        )
        _after_commit_hook(job_id)


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
        _after_commit_hook(job.pk)
    return True


def job_run_here(*, job: Job) -> bool:
    """Run a job's pending chunks in this process, as a worker would: claim, lease, heartbeat,
    complete, hooks. For commands and requests that wait for their result (`release_report`).

    Why through the job primitive: if this process dies mid-way, its lease expires and the
    reaper hands the chunk to a worker, so nothing is left "running" forever. A chunk failure
    is final (no retry: the caller is waiting for the answer) and re-raised. True when this
    process ran every chunk; False when one was claimed elsewhere or taken over meanwhile.
    """
    worker = worker_name()
    kind = job_kind(job.kind)
    ran_all = True
    pending = Chunk.objects.filter(job=job, status=JobStatus.PENDING).order_by("index")
    for chunk_id in list(pending.values_list("pk", flat=True)):
        chunk = chunk_claim(chunk_id=chunk_id, worker=worker)
        if chunk is None:
            ran_all = False
            continue
        # Inside an enclosing transaction no other process can see the claim, so there is no
        # lease anyone could take over (and a heartbeat's own connection would not see the row).
        watch = nullcontext(threading.Event()) if connection.in_atomic_block else heartbeat(chunk)
        try:
            with watch as lost:
                result = kind.run_chunk(chunk)
                raise_if_lost(lost)
        except ChunkLost:
            ran_all = False
            continue
        except Exception as exc:
            chunk_fail(chunk, f"{type(exc).__name__}: {exc}", retry=False)
            raise
        ran_all = chunk_complete(chunk, result) and ran_all
    return ran_all


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
