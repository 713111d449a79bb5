"""The `evals.run` job kind: chunks of a run go through the core's crash-safe job primitive.

Registered from `EvalsConfig.ready()` so every process (web, CLI, worker) knows the kind it
creates or runs. Hooks run after the job's final transaction commits, in the worker that
finished the last chunk.
"""

from __future__ import annotations

from typing import Any

from evalsite.core.jobs import register_job_kind
from evalsite.core.models import Chunk, Job
from evalsite.evals.services.aggregate import eval_run_finalise
from evalsite.evals.services.comparisons import (
    COMPARE_JOB,
    run_comparison_compute,
    run_comparison_failed,
)
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


def _compare_chunk(chunk: Chunk) -> dict[str, Any]:
    return run_comparison_compute(comparison_id=int(chunk.payload["comparison_id"]))


def _compare_failed(job: Job) -> None:
    for chunk in job.chunks.all():
        run_comparison_failed(
            comparison_id=int(chunk.payload["comparison_id"]),
            reason=job.error or "the comparison job failed",
        )


# Paired intervals of two runs for the compare page; idempotent (the row is overwritten).
register_job_kind(COMPARE_JOB, run_chunk=_compare_chunk, on_failed=_compare_failed,
                  on_cancelled=_compare_failed)  # fmt: skip
