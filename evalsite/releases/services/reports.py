"""Release reports: create (queue a job), build (gather arrays, compute, store once), fail.

A report is immutable once built: the payload is written by one conditional UPDATE from
queued/running to done, so a retried or duplicated job cannot rewrite numbers someone has read.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from evalsite.core.jobs import job_create
from evalsite.datasets.models import DatasetVersion
from evalsite.evals.models import EvalRun
from evalsite.evals.selectors import primary_finished_run
from evalsite.releases.errors import ReleaseError
from evalsite.releases.jobs import REPORT_JOB
from evalsite.releases.models import GateConfig, ReleaseReport, ReportStatus, gate_settings_of
from evalsite.releases.services.gather import gather
from models.models import ModelVersion
from pipelines.release import GateSettings, build_release_report

log = logging.getLogger(__name__)


def primary_run_of(
    *, model_version: ModelVersion, dataset_version: DatasetVersion
) -> EvalRun | None:
    """The newest finished run with the default post-processing (worker or imported): the same
    rule as the leaderboard's rows (`evalsite.evals.selectors.primary_run_ids`)."""
    return primary_finished_run(
        model_version_id=model_version.pk, dataset_version_id=dataset_version.pk
    )


def gate_settings_for(model_version: ModelVersion) -> GateSettings:
    return gate_settings_of(GateConfig.objects.filter(family=model_version.family_id).first())


def default_campaign(*, dataset_version: DatasetVersion, runs: tuple[int, int]) -> Any:
    """The newest campaign on the set version that compares both runs, or None."""
    from ratings.models import Campaign

    qs = Campaign.objects.filter(dataset_version=dataset_version, runs=runs[0]).filter(runs=runs[1])
    return qs.order_by("-created_at", "-pk").first()


def release_report_create(
    *,
    candidate: ModelVersion,
    baseline: ModelVersion,
    dataset_version: DatasetVersion,
    campaign: Any = None,
    user: User | None = None,
    enqueue: bool = True,
) -> ReleaseReport:
    """Check both versions have a primary run on the set version and queue the report's job.

    Raises ReleaseError naming what is missing. With `enqueue=False` the caller builds it
    (`release_report_build`, the CLI does so to print the verdict and exit with its code).
    """
    if candidate.pk == baseline.pk:
        raise ReleaseError(f"candidate and baseline are the same version ({candidate.ref})")
    runs = {}
    for side, version in (("candidate", candidate), ("baseline", baseline)):
        run = primary_run_of(model_version=version, dataset_version=dataset_version)
        if run is None:
            raise ReleaseError(
                f"the {side} {version.ref} has no finished run on {dataset_version.spec}; "
                f"start one: python manage.py run_eval --model {version.ref} "
                f"--dataset {dataset_version.spec} --wait"
            )
        runs[side] = run
    pair = (runs["candidate"].pk, runs["baseline"].pk)
    if campaign is None:
        campaign = default_campaign(dataset_version=dataset_version, runs=pair)
    elif not set(campaign.runs.values_list("pk", flat=True)) >= set(pair):
        raise ReleaseError(
            f"campaign {campaign.pk} does not compare run #{pair[0]} ({candidate.ref}) with "
            f"run #{pair[1]} ({baseline.ref}); pick a campaign over both runs or none"
        )
    settings = gate_settings_for(candidate)
    with transaction.atomic():
        report = ReleaseReport.objects.create(
            candidate=candidate, baseline=baseline, dataset_version=dataset_version,
            candidate_run=runs["candidate"], baseline_run=runs["baseline"], campaign=campaign,
            settings=settings.as_dict(), created_by=user if getattr(user, "pk", None) else None,
        )  # fmt: skip
        if enqueue:
            job = job_create(
                kind=REPORT_JOB, chunks=[{"report_id": report.pk}],
                payload={"report_id": report.pk}, created_by=report.created_by,
            )  # fmt: skip
            ReleaseReport.objects.filter(pk=report.pk).update(job=job)
            report.job = job
    return report


def _settings_from(stored: dict[str, Any]) -> GateSettings:
    return GateSettings(**stored) if stored else GateSettings()


def release_report_build(*, report_id: int) -> ReleaseReport:
    """Compute and store the report once (idempotent: a finished report is returned as is)."""
    report = ReleaseReport.objects.select_related(
        "candidate__family", "baseline__family", "dataset_version__dataset", "candidate_run",
        "baseline_run", "campaign",
    ).get(pk=report_id)  # fmt: skip
    if report.is_finished:
        return report
    ReleaseReport.objects.filter(pk=report_id, status=ReportStatus.QUEUED).update(
        status=ReportStatus.RUNNING
    )
    inputs = gather(report)
    payload = build_release_report(inputs, _settings_from(report.settings))
    payload["created_at"] = report.created_at.isoformat()
    ReleaseReport.objects.filter(
        pk=report_id, status__in=[ReportStatus.QUEUED, ReportStatus.RUNNING]
    ).update(
        status=ReportStatus.DONE, payload=payload, verdict=payload["verdict"],
        finished_at=timezone.now(), error="",
    )  # fmt: skip
    return ReleaseReport.objects.get(pk=report_id)


def release_report_fail(*, report_id: int, reason: str) -> None:
    ReleaseReport.objects.filter(
        pk=report_id, status__in=[ReportStatus.QUEUED, ReportStatus.RUNNING]
    ).update(status=ReportStatus.FAILED, error=reason[:2000], finished_at=timezone.now())


def release_report_run_now(*, report: ReleaseReport) -> ReleaseReport:
    """Build in this process (CLI, API with wait); a failure is recorded on the row, re-raised."""
    try:
        return release_report_build(report_id=report.pk)
    except Exception as exc:
        log.exception("release report %s failed", report.pk)
        release_report_fail(report_id=report.pk, reason=f"{type(exc).__name__}: {exc}")
        raise
