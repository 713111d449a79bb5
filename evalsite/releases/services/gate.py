"""Evaluate and gate in one request: candidate → validated → runs on every set of the suite
(finished runs with the same inputs are reused) → release report → its verdict and exit code.

The request (`release_gate_create`) writes the gate row and its job (`releases.gate`) in one
transaction; the job's one chunk walks the steps with `release_gate_advance`, each step running
its own job here (`job_run_here`, as the CLI does) so the reaper can finish work whose process
died. Every step looks for what a previous attempt already did, so a retried chunk redoes nothing.
One gate per (user, idempotency key): a retried CI job gets the same gate, a different request
under the same key a `GateConflict` (409).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from evalsite.core.jobs import job_create, job_run_here
from evalsite.core.models import Job
from evalsite.datasets.models import DatasetVersion
from evalsite.evals.errors import EvalError
from evalsite.evals.models import FINISHED_STATUSES, EvalRun, RunStatus
from evalsite.evals.selectors import primary_run
from evalsite.evals.services.runs import eval_run_start
from evalsite.releases.errors import ReleaseError
from evalsite.releases.jobs import GATE_JOB
from evalsite.releases.models import GateStatus, ReleaseGate, ReportStatus
from evalsite.releases.services.refs import resolve_refs
from evalsite.releases.services.reports import release_report_create, release_report_run_now
from models.errors import RegistryError
from models.models import ModelVersion, VersionStatus
from models.services.validation import model_version_validate
from pipelines.hashing import sha256_json

RUN_WAIT_SECONDS = 6 * 3600


class GateConflict(ReleaseError):
    """The idempotency key names a gate of a different request."""


def gate_fingerprint(fields: dict[str, Any]) -> str:
    return sha256_json(fields)


def release_gate_existing(*, user: User, key: str, fingerprint: str) -> ReleaseGate | None:
    """The gate this user made under `key` (None: none yet); GateConflict for another request."""
    if not key:
        return None
    gate = ReleaseGate.objects.filter(created_by=user, key=key).first()
    if gate is not None and gate.fingerprint != fingerprint:
        raise GateConflict(
            f"the idempotency key {key!r} already names gate #{gate.pk}, made from a different "
            "request; use a new key for a new request"
        )
    return gate


def release_gate_create(
    *,
    user: User,
    key: str,
    fingerprint: str,
    candidate: ModelVersion,
    baseline_ref: str,
    datasets: Sequence[DatasetVersion],
) -> tuple[ReleaseGate, bool]:
    """(gate, created): the gate row and its job in one transaction; a concurrent request with
    the same key that won the race is answered with its gate (or GateConflict)."""
    try:
        with transaction.atomic():
            gate = ReleaseGate.objects.create(
                created_by=user, key=key, fingerprint=fingerprint, candidate=candidate,
                baseline_ref=baseline_ref, datasets=[dv.spec for dv in datasets],
            )  # fmt: skip
            job = job_create(
                kind=GATE_JOB, chunks=[{"gate_id": gate.pk}], payload={"gate_id": gate.pk},
                created_by=user, max_attempts=2,
            )  # fmt: skip
            ReleaseGate.objects.filter(pk=gate.pk).update(job=job)
            gate.job = job
    except IntegrityError:
        existing = release_gate_existing(user=user, key=key, fingerprint=fingerprint)
        if existing is None:
            raise
        return existing, False
    return gate, True


def _step(gate: ReleaseGate, text: str, **fields: Any) -> None:
    ReleaseGate.objects.filter(pk=gate.pk).update(step=text, **fields)


def release_gate_fail(*, gate_id: int, reason: str) -> None:
    ReleaseGate.objects.filter(
        pk=gate_id, status__in=[GateStatus.QUEUED, GateStatus.RUNNING]
    ).update(status=GateStatus.FAILED, error=reason[:4000], finished_at=timezone.now())


def _validated(version: ModelVersion) -> ModelVersion:
    if version.status in (VersionStatus.UPLOADED, VersionStatus.VALIDATING):
        version = model_version_validate(version_id=version.pk)
    if version.status != VersionStatus.READY:
        raise ReleaseError(f"{version.ref} was rejected: {version.rejection_reason}")
    return version


def _evaluated(
    version: ModelVersion, dv: DatasetVersion, user: User | None
) -> tuple[EvalRun, bool]:
    """(run, reused): the primary finished run, else one in flight with the same inputs, else a
    new run; run here (chunks a worker took are waited for)."""
    done = primary_run(model_version=version, dataset_version=dv)
    if done is not None:
        return done, True
    run = (
        EvalRun.objects.filter(
            model_version=version, dataset_version=dv, is_default_config=True,
            status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
        ).order_by("-pk").first()
    )  # fmt: skip
    reused = run is not None
    if run is None:
        run = eval_run_start(model_version=version, dataset_version=dv, user=user)
    if run.job_id is not None:
        job_run_here(job=Job.objects.get(pk=run.job_id))
    deadline = time.monotonic() + RUN_WAIT_SECONDS
    while True:
        run = EvalRun.objects.get(pk=run.pk)
        if run.status in FINISHED_STATUSES or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if run.status != RunStatus.DONE:
        raise ReleaseError(f"run #{run.pk} of {version.ref} on {dv.spec} {run.status}: {run.error}")
    return run, reused


def release_gate_advance(*, gate_id: int) -> ReleaseGate:
    """Walk the gate to its verdict (idempotent: each step reuses what an earlier try did)."""
    gate = ReleaseGate.objects.select_related("candidate__family", "created_by").get(pk=gate_id)
    if gate.status in (GateStatus.DONE, GateStatus.FAILED):
        return gate
    ReleaseGate.objects.filter(pk=gate.pk).update(status=GateStatus.RUNNING)
    try:
        _step(gate, f"validating {gate.candidate.ref}")
        candidate = _validated(gate.candidate)
        refs = resolve_refs(candidate=candidate.ref, baseline=gate.baseline_ref,
                            dataset=gate.datasets)  # fmt: skip
        runs: list[dict[str, Any]] = []
        for dv in refs.dataset_versions:
            for side, version in (("candidate", refs.candidate), ("baseline", refs.baseline)):
                _step(gate, f"evaluating {version.ref} on {dv.spec}", runs=runs)
                run, reused = _evaluated(version, dv, gate.created_by)
                runs.append({"dataset": dv.spec, "side": side, "model": version.ref,
                             "run": run.pk, "reused": reused})  # fmt: skip
        _step(gate, "building the release report", runs=runs)
        report = gate.report
        if report is None or report.status == ReportStatus.FAILED:
            report = release_report_create(
                candidate=refs.candidate, baseline=refs.baseline,
                dataset_versions=refs.dataset_versions, user=gate.created_by, enqueue=False,
            )  # fmt: skip
            ReleaseGate.objects.filter(pk=gate.pk).update(report=report)
        if not report.is_finished:
            report = release_report_run_now(report=report)
    except (ReleaseError, EvalError, RegistryError) as exc:
        release_gate_fail(gate_id=gate.pk, reason=str(exc))
        return ReleaseGate.objects.get(pk=gate.pk)
    ReleaseGate.objects.filter(pk=gate.pk, status=GateStatus.RUNNING).update(
        status=GateStatus.DONE, step="done", finished_at=timezone.now()
    )
    return ReleaseGate.objects.get(pk=gate.pk)
