"""Validating a version: the sandboxed dry run, recorded on the version row.

The same function runs inline (CLI, demo) and inside the `registry.validate` job chunk (web, API),
so the verdict cannot depend on the door. The model is loaded only in the sandbox's child process
under memory and CPU-time limits: a segfault, an out-of-memory or a hang costs that child, never
the worker or the CLI.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from evalsite.core.jobs import job_create
from evalsite.core.models import Job
from models.files import version_file
from models.models import ModelFormat, ModelVersion, VersionStatus

VALIDATE_JOB = "registry.validate"
COREML_NOTE = "prediction on macOS workers only: coreml queue"


def validation_limits() -> dict[str, int]:
    """Limits of the child process that runs model code (settings MODEL_VALIDATION_*)."""
    return {
        "memory_mb": settings.MODEL_VALIDATION_MEMORY_MB,
        "cpu_seconds": settings.MODEL_VALIDATION_CPU_SECONDS,
        "timeout_s": settings.MODEL_VALIDATION_TIMEOUT_S,
    }


def validation_job_create(*, version: ModelVersion, user: User | None = None) -> Job:
    """Enqueue validation; limits travel in the payload so the worker applies the caller's."""
    return job_create(
        kind=VALIDATE_JOB,
        chunks=[{"version_id": version.pk, "limits": validation_limits()}],
        queue="default",
        payload={"version_id": version.pk, "ref": version.ref},
        created_by=user,
        max_attempts=2,  # the sandbox absorbs model crashes; a retry covers a lost worker only
    )


def model_version_validate(
    *, version_id: int, limits: dict[str, int] | None = None
) -> ModelVersion:
    """Run the dry forward in the sandbox and record ready/rejected with the exact reason.

    Idempotent: a finished version is returned unchanged; a version left `validating` by a dead
    worker is validated again.
    """
    claimed = ModelVersion.objects.filter(
        pk=version_id, status__in=[VersionStatus.UPLOADED, VersionStatus.VALIDATING]
    ).update(status=VersionStatus.VALIDATING)
    version = ModelVersion.objects.select_related("family").get(pk=version_id)
    if not claimed:
        return version
    try:
        ok, reason, report, note = _run_checks(version, limits or validation_limits())
    except Exception as exc:  # a bug or missing dependency in the checks, not in the model
        ok, reason, report, note = (
            False,
            f"validation could not run: {type(exc).__name__}: {exc}",
            {},
            "",
        )
    with transaction.atomic():
        ModelVersion.objects.filter(pk=version_id, status=VersionStatus.VALIDATING).update(
            status=VersionStatus.READY if ok else VersionStatus.REJECTED,
            rejection_reason="" if ok else reason,
            validation_report=report,
            status_note=note,
            validated_at=timezone.now(),
        )
        if not ok:
            _drop_rejected_file(version_id)
    version.refresh_from_db()
    return version


def _drop_rejected_file(version_id: int) -> None:
    """A rejected version keeps its row and reason, not its bytes (nothing runs them again)."""
    row = ModelVersion.objects.filter(pk=version_id, status=VersionStatus.REJECTED).first()
    if row is None or not row.file or not row.file.name:
        return
    name, storage = str(row.file.name), row.file.storage
    ModelVersion.objects.filter(pk=version_id).update(file="")
    transaction.on_commit(lambda: storage.delete(name))


def model_version_reject(*, version_id: int, reason: str) -> None:
    """Record a validation that never finished (its job failed) so the page says why."""
    ModelVersion.objects.filter(
        pk=version_id, status__in=[VersionStatus.UPLOADED, VersionStatus.VALIDATING]
    ).update(status=VersionStatus.REJECTED, rejection_reason=reason, validated_at=timezone.now())
    _drop_rejected_file(version_id)


def _run_checks(
    version: ModelVersion, limits: dict[str, int]
) -> tuple[bool, str, dict[str, Any], str]:
    from pipelines.sandbox import validate_model

    local = version_file(version)
    path = str(local) if local is not None else None
    report = validate_model(
        path,
        version.spec,
        memory_mb=limits["memory_mb"],
        cpu_seconds=limits["cpu_seconds"],
        timeout_s=limits["timeout_s"],
    )
    data = _report_dict(report)
    if getattr(report, "runtime_unavailable", False) and version.format == ModelFormat.COREML:
        return _coreml_checks_without_runtime(version, data)
    return bool(report.ok), str(report.reason or ""), data, ""


def _coreml_checks_without_runtime(
    version: ModelVersion, data: dict[str, Any]
) -> tuple[bool, str, dict[str, Any], str]:
    """Core ML cannot predict off macOS: check the baked-in normalisation against the spec.

    The spec itself was validated at the door. A passing check makes the version `ready` with a
    note, so runs route it to the `coreml` queue that only macOS workers consume.
    """
    from pipelines.convert import check_coreml_normalisation

    check = check_coreml_normalisation(str(version_file(version)), version.spec)
    data = {
        **data,
        "ok": bool(check.ok),
        "reason": check.reason or "ok",
        "normalisation": _report_dict(check),
        "checked": "spec + input scale/bias vs the spec's normalisation (no prediction here)",
    }
    if not check.ok:
        return False, f"Core ML normalisation check failed: {check.reason}", data, ""
    return True, "", data, COREML_NOTE


def _report_dict(report: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        data = dataclasses.asdict(report)
    elif isinstance(report, dict):
        data = dict(report)
    else:
        data = {"result": str(report)}
    return _jsonable(data)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):  # NaN/inf are not JSON
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
