"""The one way other apps read a run's stored summary (`EvalRun.summary`)."""

from __future__ import annotations

from evalsite.evals.models import EvalRun
from pipelines.payloads.run_summary import RunSummary


def run_summary(run: EvalRun) -> RunSummary | None:
    """The run's summary through its contract; None while the run has none (not finished).
    Raises `pipelines.payloads.PayloadError` for a stored summary this code cannot read."""
    if not run.summary:
        return None
    return RunSummary.from_dict(run.summary)
