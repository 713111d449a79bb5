"""Celery tasks of the core: the generic chunk runner and the reaper.

Tasks stay thin: they take ids, call a service and return. `RecordingTask` records a failure the
task could not handle itself on the row that owns the work, so pages show *why*.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.apps import apps
from django.db import close_old_connections

from evalsite.core import jobs
from evalsite.core.models import Chunk

log = logging.getLogger(__name__)


class RecordingTask(Task):  # type: ignore[misc]
    """Base task: on an unhandled failure, write the error on the owning row.

    A task names its owner with `owner_model = "app_label.Model"`; its first positional argument
    is that row's primary key, and the row has `status` and `error` fields.
    """

    abstract = True
    owner_model: str | None = None
    owner_failed_status = "failed"

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
            model.objects.filter(pk=args[0]).update(
                status=self.owner_failed_status, error=f"{type(exc).__name__}: {exc}"
            )
        except Exception:  # recording must never mask the original failure
            log.exception("could not record failure of %s on %s", self.name, self.owner_model)


@shared_task(bind=True, base=RecordingTask, name="evalsite.core.tasks.run_chunk")
def run_chunk(self: RecordingTask, chunk_id: int) -> str:
    """Claim one chunk, run its kind's handler under a heartbeat, record the outcome."""
    close_old_connections()
    chunk = jobs.chunk_claim(chunk_id=chunk_id, worker=jobs.worker_name())
    if chunk is None:
        return "not claimed"  # duplicate message, finished or cancelled: nothing to do
    kind = jobs.job_kind(chunk.job.kind)
    try:
        with jobs.heartbeat(chunk) as lost:
            result = kind.run_chunk(chunk)
            jobs.raise_if_lost(lost)
    except jobs.ChunkLost:
        return "lost"
    except SoftTimeLimitExceeded:
        jobs.chunk_fail(chunk, "time limit exceeded", retry=False)
        return "time limit"
    except Exception as exc:
        log.exception("chunk %s failed", chunk_id)
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        jobs.chunk_fail(chunk, detail, retry=getattr(exc, "retryable", True))
        return "failed"
    return "done" if jobs.chunk_complete(chunk, result) else "lost"


@shared_task(name="evalsite.core.tasks.reap_jobs", ignore_result=True)
def reap_jobs() -> dict[str, int]:
    close_old_connections()
    return jobs.jobs_reap()


__all__ = ["Chunk", "RecordingTask", "reap_jobs", "run_chunk"]
