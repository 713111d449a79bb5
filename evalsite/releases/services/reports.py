"""Release reports: create (queue a job), build (gather arrays, compute, store once), fail.

A report is immutable once built: the payload is written by one conditional UPDATE from
queued/running to done, so a retried or duplicated job cannot rewrite numbers someone has read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from evalsite.core.jobs import job_create, job_run_here
from evalsite.core.models import Job
from evalsite.datasets.models import DatasetVersion
from evalsite.evals.models import EvalRun
from evalsite.evals.selectors import biased_evidence, primary_run
from evalsite.releases.errors import ReleaseError
from evalsite.releases.jobs import REPORT_JOB
from evalsite.releases.models import (
    GateConfig,
    ReleaseReport,
    ReportSet,
    ReportStatus,
    gate_settings_of,
)
from evalsite.releases.services.gather import gather
from models.models import ModelVersion
from pipelines.payloads.campaign import PeopleMetrics
from pipelines.payloads.release_report import RELEASE_REPORT_VERSION, ReleaseReportPayload
from pipelines.release import GateSettings, build_suite_report
from pipelines.release.evidence import report_with_biased_evidence
from ratings.selectors import campaign_comparing, campaign_run_ids

if TYPE_CHECKING:  # a report's campaign is a foreign key; its data is read through ratings
    from ratings.models import Campaign

log = logging.getLogger(__name__)


def gate_settings_for(model_version: ModelVersion) -> GateSettings:
    return gate_settings_of(GateConfig.objects.filter(family=model_version.family_id).first())


def release_report_create(
    *,
    candidate: ModelVersion,
    baseline: ModelVersion,
    dataset_versions: Sequence[DatasetVersion],
    campaign: Campaign | None = None,
    user: User | None = None,
    enqueue: bool = True,
) -> ReleaseReport:
    """Check both versions have a primary run on every set version of the suite and queue the
    report's job (the first set version is the quality set, shown first).

    Raises ReleaseError naming what is missing. With `enqueue=False` the job is not sent to a
    worker: the caller builds it through `release_report_run_now` (the CLI does, to print the
    verdict and exit with its code). Either way the report has a job, so a builder that died is
    found by the reaper.
    """
    if candidate.pk == baseline.pk:
        raise ReleaseError(f"candidate and baseline are the same version ({candidate.ref})")
    suite = list(dataset_versions)
    if not suite:
        raise ReleaseError("name at least one set version (e.g. --dataset NAME)")
    if len({dv.pk for dv in suite}) != len(suite):
        raise ReleaseError("a set version is named twice; name each set version of the suite once")
    runs: list[dict[str, EvalRun]] = []
    for dataset_version in suite:
        pair = {}
        for side, version in (("candidate", candidate), ("baseline", baseline)):
            run = primary_run(model_version=version, dataset_version=dataset_version)
            if run is None:
                raise ReleaseError(
                    f"the {side} {version.ref} has no finished run on {dataset_version.spec}; "
                    f"start one: python manage.py run_eval --model {version.ref} "
                    f"--dataset {dataset_version.spec} --wait"
                )
            pair[side] = run
        runs.append(pair)
    pairs = [(p["candidate"].pk, p["baseline"].pk) for p in runs]
    if campaign is None:
        campaign = campaign_comparing(pairs=pairs)
    else:
        compared = campaign_run_ids(campaign)
        if not any(set(pair) <= compared for pair in pairs):
            raise ReleaseError(
                f"campaign {campaign.pk} does not compare {candidate.ref} with {baseline.ref} "
                "on any set of the report (runs "
                + ", ".join(f"#{c} vs #{b}" for c, b in pairs)
                + "); pick a campaign over one of these pairs or none"
            )
    settings = gate_settings_for(candidate)
    with transaction.atomic():
        report = ReleaseReport.objects.create(
            candidate=candidate, baseline=baseline, dataset_version=suite[0],
            candidate_run=runs[0]["candidate"], baseline_run=runs[0]["baseline"],
            campaign=campaign, settings=settings.as_dict(),
            created_by=user if getattr(user, "pk", None) else None,
        )  # fmt: skip
        ReportSet.objects.bulk_create([
            ReportSet(report=report, position=k, dataset_version=dv,
                      candidate_run=pair["candidate"], baseline_run=pair["baseline"])
            for k, (dv, pair) in enumerate(zip(suite, runs, strict=True))
        ])  # fmt: skip
        job = job_create(
            kind=REPORT_JOB, chunks=[{"report_id": report.pk}],
            payload={"report_id": report.pk}, created_by=report.created_by, send=enqueue,
        )  # fmt: skip
        ReleaseReport.objects.filter(pk=report.pk).update(job=job)
        report.job = job
    return report


def release_report_rebuild(*, report: ReleaseReport, user: User | None = None) -> ReleaseReport:
    """A new report over the same candidate, baseline, set versions and campaign, from the
    primary runs as they are now (the old one stays as it was: reports are immutable)."""
    suite = [rs.dataset_version for rs in report.sets.select_related("dataset_version")]
    return release_report_create(
        candidate=report.candidate, baseline=report.baseline,
        dataset_versions=suite or [report.dataset_version], campaign=report.campaign, user=user,
    )  # fmt: skip


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
    from evalsite.releases.services.evidence import campaign_generation, report_evidence

    generation = campaign_generation(report.campaign_id)  # before the votes are read
    parts = gather(report)
    evidence = report_evidence(report=report, generation=generation)
    document = build_suite_report(parts, _settings_from(report.settings))
    document = _with_biased_evidence(document, report)
    document["people_metrics"] = people_metrics(report)
    document["created_at"] = report.created_at.isoformat()
    payload = ReleaseReportPayload.from_dict({**document, "version": RELEASE_REPORT_VERSION})
    ReleaseReport.objects.filter(
        pk=report_id, status__in=[ReportStatus.QUEUED, ReportStatus.RUNNING]
    ).update(
        status=ReportStatus.DONE, payload=payload.to_dict(), verdict=payload.verdict,
        inputs=evidence, finished_at=timezone.now(), error="",
    )  # fmt: skip
    return ReleaseReport.objects.get(pk=report_id)


def people_metrics(report: ReleaseReport) -> dict[str, Any]:
    """Which metric predicts people: the report's campaign as its stored snapshot ranks the
    metrics, and the candidate's family pooled over all its campaigns' snapshots (whole-image
    and instance-lift campaigns apart; `ratings.services.metric_agreement`)."""
    from ratings.services.metric_agreement import family_metric_agreement
    from ratings.services.reports import campaign_metric_agreement

    campaign = None
    if report.campaign_id:
        section = campaign_metric_agreement(campaign_id=report.campaign_id)
        if section is not None:
            campaign = {"campaign": report.campaign_id, **section.to_dict()}
    family = family_metric_agreement(family=report.candidate.family.name)
    return {
        "campaign": campaign,
        "family": _dict_or_none(family["image"]),
        "family_instances": _dict_or_none(family["instances"]),
    }


def _dict_or_none(section: PeopleMetrics | None) -> dict[str, Any] | None:
    return section.to_dict() if section is not None else None


def _with_biased_evidence(payload: dict[str, Any], report: ReleaseReport) -> dict[str, Any]:
    """Name, per set of the suite, the items either version declares it was trained, tuned or
    selected on, and keep quality gates read on them from passing (`pipelines.release.evidence`)."""
    entries = [
        {**o.as_dict(), "dataset": part.dataset_version.spec}
        for part in report.sets.select_related("dataset_version__dataset")
        for o in biased_evidence(
            versions=[report.candidate, report.baseline], dataset_version=part.dataset_version
        )
    ]
    return report_with_biased_evidence(payload, entries)


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
