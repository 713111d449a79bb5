"""The reaper: the periodic safety net of the job primitive (evalsite/core/jobs.py).

Runs from Celery beat every JOB_REAPER_SECONDS on the `maintenance` queue, which only the
maintenance worker consumes, so a long chunk never delays it. Each pass:

1. re-enqueues running chunks whose lease expired (their worker died), or fails them after
   `max_attempts`;
2. finishes open jobs whose chunks are all terminal (a lost "last chunk" step);
3. runs final hooks that never ran (the finishing worker died between commit and hook);
4. resends pending chunks that have no message on the broker: how many are missing is read
   from the broker's queue depth, so a broker restart without persistence costs about two
   reaper periods; a backlog whose messages are all queued gets no duplicates. The fixed
   resend interval is only the fallback when the broker cannot be asked.

Safe to run concurrently (two beats): every change is a conditional UPDATE on the state it saw,
or happens with the job row locked.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from functools import partial

# The project's app (evalsite.celery), which Celery's Django fix-up makes every thread's
# default; core does not import that module, which imports core.
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from evalsite.core import jobs
from evalsite.core.models import Chunk, Job, JobStatus, ServiceHeartbeat

log = logging.getLogger(__name__)

OPEN = [JobStatus.PENDING, JobStatus.RUNNING]
FINISHED = [JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED]
#: A message is given this many reaper periods to reach a worker before its chunk counts as
#: possibly unsent: two periods cover a send that raced the previous pass.
RESEND_GRACE_PERIODS = 2
#: A finished job's hook is the finishing worker's to run for this many reaper periods; after
#: that the reaper assumes that worker died before running it.
HOOK_GRACE_PERIODS = 2


def reap() -> dict[str, int]:
    now = timezone.now()
    requeued, failed = reap_expired_leases(now)
    stats = {
        "requeued": requeued,
        "failed": failed,
        "finished_jobs": finish_stuck_jobs(),
        "hooks": run_lost_hooks(now),
        "resent": resend_unqueued(now),
    }
    ServiceHeartbeat.objects.update_or_create(
        name="beat", defaults={"last_seen": now, "detail": stats}
    )
    return stats


def reap_expired_leases(now: datetime) -> tuple[int, int]:
    requeued = failed = 0
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
                    jobs.job_fail(job_id=chunk.job_id, reason=f"chunk {chunk.index}: {reason}")
            elif still.update(
                status=JobStatus.PENDING,
                error=f"lease expired on {who}; re-enqueued",
                lease_expires_at=None,
                claimed_by="",
                interruptions=0,
            ):
                requeued += 1
                transaction.on_commit(partial(jobs.chunk_send, chunk))
    return requeued, failed


def finish_stuck_jobs() -> int:
    """Open jobs without an open chunk: finish them as the last chunk's worker should have."""
    open_chunk = Chunk.objects.filter(status__in=OPEN)
    stuck = (
        Job.objects.filter(status__in=OPEN, chunks__isnull=False)
        .exclude(pk__in=open_chunk.values("job_id"))
        .distinct()
        .values_list("pk", flat=True)
    )
    finished = 0
    for job_id in list(stuck):
        with transaction.atomic():
            jobs.job_finish_if_complete(job_id=job_id)
        finished += Job.objects.filter(pk=job_id, status__in=FINISHED).exists()
    if finished:
        log.warning("reaper finished %d job(s) whose last chunk step was lost", finished)
    return finished


def run_lost_hooks(now: datetime) -> int:
    grace = timedelta(seconds=settings.JOB_REAPER_SECONDS * HOOK_GRACE_PERIODS)
    lease = timedelta(seconds=settings.JOB_LEASE_SECONDS)
    due = Job.objects.filter(
        status__in=FINISHED, hook_ran_at__isnull=True, finished_at__lt=now - grace
    ).filter(Q(hook_claimed_at__isnull=True) | Q(hook_claimed_at__lt=now - lease))
    ran = 0
    for job_id in list(due.values_list("pk", flat=True)):
        ran += jobs.job_run_hook(job_id=job_id)
    return ran


def broker_queue_depths(queues: set[str]) -> dict[str, int] | None:
    """Ready messages per queue, as the broker counts them; None when it cannot be asked.

    Uses the virtual transports' size query (Redis LLEN, the filesystem broker's folder count),
    the same number `celery inspect` would need a live worker for.
    """
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            channel = conn.default_channel
            size = getattr(channel, "_size", None)
            if size is None:
                return None
            return {q: int(size(q)) for q in queues}
    except Exception as exc:
        log.warning("could not read broker queue depths: %s", exc)
        return None


def resend_unqueued(now: datetime) -> int:
    """Resend pending chunks the broker holds no message for (lost with a broker restart, or
    taken by a worker that died or could not reach the database before claiming them).

    Per queue, `pending − queued` chunks lack a message; the oldest-sent ones beyond the grace
    period are sent again (a duplicate finds nothing to claim). Only when the broker cannot be
    asked are chunks pending longer than JOB_PENDING_RESEND_SECONDS resent regardless.
    """
    grace = now - timedelta(seconds=settings.JOB_REAPER_SECONDS * RESEND_GRACE_PERIODS)
    fallback = now - timedelta(seconds=settings.JOB_PENDING_RESEND_SECONDS)
    pending = list(
        Chunk.objects.filter(status=JobStatus.PENDING, job__status__in=OPEN).order_by(
            "enqueued_at", "pk"
        )
    )
    if not pending:
        return 0
    by_queue: dict[str, list[Chunk]] = defaultdict(list)
    for chunk in pending:
        by_queue[chunk.queue].append(chunk)
    depths = broker_queue_depths(set(by_queue))
    resent = 0
    for queue, chunks in by_queue.items():
        missing = len(chunks) - depths[queue] if depths is not None else 0
        for chunk in chunks:
            sent = chunk.enqueued_at
            if depths is None:
                due = sent is None or sent < fallback
            else:
                # The broker answered: a chunk whose message is still queued is only waiting
                # for a worker (a backlog), and resending it would queue a duplicate each time.
                # Stale messages of finished chunks can make `missing` low for a while, but
                # workers drain them, so the count catches up without a fixed-interval resend.
                due = missing > 0 and (sent is None or sent < grace)
            if not due:
                continue
            jobs.chunk_send(chunk)
            resent += 1
            missing -= 1
    if resent:
        log.info("reaper resent %d pending chunk(s) without a queued message", resent)
    return resent
