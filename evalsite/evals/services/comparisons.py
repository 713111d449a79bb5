"""Stored paired intervals of two runs (the compare page reads them; a job computes them).

Why a job: the compare page is a GET and never computes statistics; a bootstrap over a large set
takes seconds. The interval rule is the release report's, not a second one: the same pairing
(`evalsite.evals.pairing`), the same `paired_deltas` with the report's default rounds and seed, so
the compare page and a release report on the same two runs show the same intervals.

Queued (a) by the compare page's "Compute intervals" button and (b) when a run finishes, against
the primary run of the version `production` points to on the same set version.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from evalsite.core.jobs import job_create
from evalsite.core.providers import PAIRED_FAIRNESS, provider
from evalsite.evals.models import ComparisonStatus, EvalRun, RunComparison, RunStatus
from evalsite.evals.pairing import paired_results
from pipelines.release import GateSettings
from pipelines.release.deltas import paired_deltas
from pipelines.stats.bootstrap import DEFAULT_LEVEL

log = logging.getLogger(__name__)

COMPARE_JOB = "evals.compare"
#: The release report's bootstrap settings (families cannot change rounds or seed), so both
#: pages draw the same item indices.
REPORT_SETTINGS = GateSettings()


class ComparisonRefused(ValueError):
    """The two runs cannot be compared (the message says why and what to do)."""


def _check(baseline: EvalRun, candidate: EvalRun) -> None:
    if baseline.pk == candidate.pk:
        raise ComparisonRefused("pick two different runs to compare")
    for run in (baseline, candidate):
        if run.status != RunStatus.DONE or not run.output_digest:
            raise ComparisonRefused(
                f"run #{run.pk} is {run.status}: intervals need two finished runs"
            )
    if baseline.dataset_version_id != candidate.dataset_version_id:
        raise ComparisonRefused(
            "these runs are on different set versions; compare runs of the same set version"
        )


def run_comparison_request(
    *, baseline: EvalRun, candidate: EvalRun, user: Any = None
) -> RunComparison:
    """The stored comparison of these outputs, queueing its job when none is stored or queued.

    Idempotent: a second request for the same outputs returns the same row without a second job;
    a failed one is queued again. Raises ComparisonRefused with the reason.
    """
    _check(baseline, candidate)
    key: dict[str, Any] = {
        "baseline": baseline,
        "candidate": candidate,
        "baseline_digest": baseline.output_digest,
        "candidate_digest": candidate.output_digest,
    }
    with transaction.atomic():
        try:
            with transaction.atomic():
                row, created = RunComparison.objects.get_or_create(**key)
        except IntegrityError:  # a concurrent request created it first
            row, created = RunComparison.objects.get(**key), False
        if not created:
            # Only a failed row is queued again, and only by the request that flips it back.
            again = RunComparison.objects.filter(pk=row.pk, status=ComparisonStatus.FAILED).update(
                status=ComparisonStatus.QUEUED, error=""
            )
            if not again:
                return row
        job = job_create(
            kind=COMPARE_JOB,
            chunks=[{"comparison_id": row.pk}],
            payload={"baseline": baseline.pk, "candidate": candidate.pk},
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        RunComparison.objects.filter(pk=row.pk).update(job=job)
    row.refresh_from_db()
    return row


def run_comparison_compute(*, comparison_id: int) -> dict[str, Any]:
    """Job handler body: paired deltas of every metric from one shared draw; stores them."""
    row = RunComparison.objects.select_related("baseline", "candidate").get(pk=comparison_id)
    paired = paired_results(baseline=row.baseline, candidate=row.candidate)
    s = REPORT_SETTINGS
    deltas_of = partial(paired_deltas, margin=s.improvement_margin, rounds=s.rounds,
                        level=DEFAULT_LEVEL, seed=s.seed)  # fmt: skip
    deltas = deltas_of(paired.baseline, paired.candidate)
    if paired.instance_baseline:  # the release report's instance deltas, from the same seed
        deltas = {**deltas, **deltas_of(paired.instance_baseline, paired.instance_candidate)}
    metrics = {}
    for name, d in deltas.items():
        metrics[name] = {**d.as_dict(), "excludes_zero": bool(d.low > 0 or d.high < 0)}
    payload = {
        "n": len(paired.items),
        "dropped": paired.dropped,
        "rounds": s.rounds,
        "level": DEFAULT_LEVEL,
        "seed": s.seed,
        "metrics": metrics,
        "fairness": provider(PAIRED_FAIRNESS)(
            baseline=row.baseline, candidate=row.candidate
        ).to_dict(),
    }
    RunComparison.objects.filter(pk=row.pk).update(
        status=ComparisonStatus.DONE, payload=payload, error="", computed_at=timezone.now()
    )
    return {"comparison": row.pk, "n": payload["n"]}


def run_comparison_failed(*, comparison_id: int, reason: str) -> None:
    RunComparison.objects.filter(pk=comparison_id).exclude(status=ComparisonStatus.DONE).update(
        status=ComparisonStatus.FAILED, error=reason[:2000]
    )


def production_run_for(run: EvalRun) -> EvalRun | None:
    """The primary run of the version `production` points to, on the run's set version (None
    when the family has no production alias, it points to this run's version, or it has no
    finished run there)."""
    from evalsite.evals.selectors import primary_run
    from models.models import PRODUCTION, Alias

    alias = Alias.objects.filter(family=run.model_version.family_id, name=PRODUCTION).first()
    if alias is None or alias.version_id == run.model_version_id:
        return None
    return primary_run(model_version=alias.version_id, dataset_version=run.dataset_version_id)


def run_comparison_after_run_done(*, run: EvalRun) -> None:
    """The run-done hook: queue this run's comparison with production. Never raises (a
    comparison problem must not undo a finished run); the compare page offers the button."""
    try:
        baseline = production_run_for(run)
        if baseline is not None and baseline.pk != run.pk:
            run_comparison_request(baseline=baseline, candidate=run)
    except Exception:
        log.exception("could not queue the comparison of run %s with production", run.pk)
