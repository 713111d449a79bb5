"""Release reports: create (queue a job), build (gather arrays, compute, store once), fail.

A report is immutable once built: the payload is written by one conditional UPDATE from
queued/running to done, so a retried or duplicated job cannot rewrite numbers someone has read.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from evalsite.core.jobs import job_create, job_run_here
from evalsite.core.models import Job
from evalsite.datasets.models import DatasetVersion
from evalsite.evals.models import EvalRun, RunStatus
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
    return (
        EvalRun.objects.filter(
            model_version=model_version, dataset_version=dataset_version,
            status=RunStatus.DONE, is_default_config=True,
        ).order_by("-finished_at", "-pk").first()
    )  # fmt: skip


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

    Raises ReleaseError naming what is missing. With `enqueue=False` the job is not sent to a
    worker: the caller builds it through `release_report_run_now` (the CLI does, to print the
    verdict and exit with its code). Either way the report has a job, so a builder that died is
    found by the reaper.
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
        job = job_create(
            kind=REPORT_JOB, chunks=[{"report_id": report.pk}],
            payload={"report_id": report.pk}, created_by=report.created_by, send=enqueue,
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


def release_report_run_now(*, report: ReleaseReport, wait_seconds: float = 600.0) -> ReleaseReport:
    """Build in this process through the report's job (CLI, API with wait, demo): claimed and
    leased like a worker's chunk, so a killed command leaves nothing "running" — the reaper
    hands the chunk to a worker. A failure is recorded on the row and re-raised. If a worker
    claimed the job first, wait for it (at most `wait_seconds`)."""
    if report.job_id is None:  # a report created before every report had a job
        raise ReleaseError(f"report #{report.pk} has no job; create a new report")
    job = Job.objects.get(pk=report.job_id)
    try:
        job_run_here(job=job)
    except Exception as exc:
        log.exception("release report %s failed", report.pk)
        release_report_fail(report_id=report.pk, reason=f"{type(exc).__name__}: {exc}")
        raise
    deadline = time.monotonic() + wait_seconds
    while True:
        current = ReleaseReport.objects.get(pk=report.pk)
        if current.is_finished or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if current.status == ReportStatus.FAILED:
        raise ReleaseError(f"report #{report.pk} failed: {current.error}")
    if not current.is_finished:
        raise ReleaseError(f"report #{report.pk} is still being built by a worker; see its page")
    return current
