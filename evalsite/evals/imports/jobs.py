"""The `evals.import` job kind: chunks of an imported run, scored by a worker on `default`.

The run's hooks are the worker runs' own (finalise from the stored PNGs; fail; cancel).
"""

from __future__ import annotations

from evalsite.core.jobs import register_job_kind
from evalsite.core.models import Job
from evalsite.evals.imports.services import IMPORT_JOB, import_chunk_run
from evalsite.evals.services.aggregate import eval_run_finalise
from evalsite.evals.services.runs import eval_run_fail, eval_run_mark_cancelled


def _on_done(job: Job) -> None:
    eval_run_finalise(run_id=int(job.payload["run_id"]))


def _on_failed(job: Job) -> None:
    eval_run_fail(run_id=int(job.payload["run_id"]), reason=f"import job failed: {job.error}")


def _on_cancelled(job: Job) -> None:
    eval_run_mark_cancelled(run_id=int(job.payload["run_id"]), reason=job.error or "cancelled")


register_job_kind(
    IMPORT_JOB,
    run_chunk=import_chunk_run,
    on_done=_on_done,
    on_failed=_on_failed,
    on_cancelled=_on_cancelled,
)
