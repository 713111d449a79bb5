"""Test helper: store two runs' comparison as the `evals.compare` job would, inline."""

from __future__ import annotations

from typing import Any

from evalsite.evals.models import EvalRun, RunComparison
from evalsite.evals.services.comparisons import COMPARE_JOB, run_comparison_request
from tests.inline import run_pending_inline


def run_compare_jobs(capture: Any) -> int:
    """Execute every pending comparison chunk in this process, hooks included; returns how many."""
    return run_pending_inline(COMPARE_JOB, capture)


def stored_comparison(baseline: EvalRun, candidate: EvalRun, capture: Any) -> RunComparison:
    """Give rows-built runs an output digest (finalising a run sets one), then queue and run
    their comparison job."""
    for run in (baseline, candidate):
        if not run.output_digest:
            EvalRun.objects.filter(pk=run.pk).update(output_digest=f"{run.pk:064d}")
            run.refresh_from_db()
    row = run_comparison_request(baseline=baseline, candidate=candidate)
    run_compare_jobs(capture)
    row.refresh_from_db()
    return row
