"""The `evals.run` job kind: chunks of a run go through the core's crash-safe job primitive.

Registered from `EvalsConfig.ready()` so every process (web, CLI, worker) knows the kind it
creates or runs. Hooks run after the job's final transaction commits, in the worker that
finished the last chunk.
"""

from __future__ import annotations

from evalsite.core.jobs import register_job_kind
from evalsite.core.models import Job
from evalsite.evals.services.aggregate import eval_run_finalise
from evalsite.evals.services.execute import eval_chunk_run
from evalsite.evals.services.runs import EVAL_JOB, eval_run_fail, eval_run_mark_cancelled


def _on_done(job: Job) -> None:
    eval_run_finalise(run_id=int(job.payload["run_id"]))


def _on_failed(job: Job) -> None:
    eval_run_fail(run_id=int(job.payload["run_id"]), reason=f"evaluation job failed: {job.error}")


def _on_cancelled(job: Job) -> None:
    eval_run_mark_cancelled(run_id=int(job.payload["run_id"]), reason=job.error or "cancelled")


register_job_kind(
    EVAL_JOB,
    run_chunk=eval_chunk_run,
    on_done=_on_done,
    on_failed=_on_failed,
    on_cancelled=_on_cancelled,
)
