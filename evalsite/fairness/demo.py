"""`make demo` step of the fairness app: make sure every finished run on a set with person labels
(the demo's `synthetic-people`) has its fairness report, and say where to look.

Reports are computed by the `fairness.report` job that the run-done hook enqueues; this step only
waits for them (a live worker takes a few seconds) and computes any that are still missing after
the wait in this process, so the demo never shows "being computed" for long. Idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from evalsite.datasets.selectors import revision_pick
from evalsite.evals.models import EvalRun, RunStatus
from evalsite.fairness.inputs import NoPersonAttributes, person_attributes
from evalsite.fairness.models import FairnessReport
from evalsite.fairness.services import fairness_report_compute

#: How long to wait for the worker's reports before computing the rest here.
WAIT_SECONDS = 60.0
POLL_SECONDS = 2.0

Log = Callable[[str], object]


def _runs_with_persons() -> list[EvalRun]:
    runs = []
    done = EvalRun.objects.filter(status=RunStatus.DONE).select_related(
        "dataset_version__dataset", "model_version__family"
    )
    for run in done:
        revision = revision_pick(version=run.dataset_version)
        if revision is not None and person_attributes(revision):
            runs.append(run)
    return runs


def _missing(runs: list[EvalRun]) -> list[EvalRun]:
    out = []
    for run in runs:
        revision = revision_pick(version=run.dataset_version)
        if not FairnessReport.objects.filter(
            run=run, attribute_revision=revision, is_default=True
        ).exists():
            out.append(run)
    return out


def after_start(log: Log) -> None:
    runs = _runs_with_persons()
    if not runs:
        log("fairness: no finished run on a set with person labels yet")
        return
    deadline = time.monotonic() + WAIT_SECONDS
    missing = _missing(runs)
    while missing and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        missing = _missing(runs)
    for run in missing:
        try:
            fairness_report_compute(run=run)
        except (NoPersonAttributes, ValueError) as exc:
            log(f"fairness: run #{run.pk}: {exc}")
    for run in runs:
        report = (
            FairnessReport.objects.filter(run=run, is_default=True)
            .order_by("-attribute_revision__number")
            .first()
        )
        if report is None:
            continue
        note = " — SYNTHETIC labels" if report.synthetic_labels else ""
        log(
            f"fairness: run #{run.pk} {run.model_version} on {run.dataset_version.spec}: "
            f"{report.flag_count} flag(s){note} → /fairness/runs/{run.pk}/"
        )
