"""Conversions (ONNX, Core ML) registered as child versions of a torch.export source.

A child is `<source version>+<target>` (e.g. `1.1.0+onnx`): it starts with a digit like every
version, sorts beside its source, and makes a second conversion of the same source a no-op. The
child is validated like any upload; Core ML children are checked for spec + normalisation on
Linux and predicted only by macOS workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from evalsite.core.jobs import job_create
from evalsite.core.models import Job
from evalsite.core.tempdirs import temp_folder
from models.errors import ConversionFailed, RegistryError
from models.files import version_file
from models.models import ModelFormat, ModelVersion, VersionStatus
from models.services.versions import model_version_register

CONVERSION_TARGETS = (ModelFormat.ONNX.value, ModelFormat.COREML.value)
CONVERT_JOB = "registry.convert"
# Conversions trace the whole network and coremltools holds a second copy of it, so they get more
# room than a validation; the limits stop a runaway. The 2 MB reference model converts in ~15 s
# wall (ONNX incl. verification) and ~13 s (Core ML) on the 2-core dev box.
CONVERSION_LIMITS: dict[str, Any] = {"memory_mb": 8192, "cpu_seconds": 900, "timeout_s": 900.0}


def conversion_child_version(source: ModelVersion, target: str) -> str:
    return f"{source.version}+{target}"


def _check_source(source: ModelVersion, target: str) -> None:
    if target not in CONVERSION_TARGETS:
        raise RegistryError(
            f"Unknown conversion target {target!r}; choose from {CONVERSION_TARGETS}."
        )
    if source.format != ModelFormat.TORCH_EXPORT:
        raise RegistryError(
            f"{source.ref} is {source.format}; conversions start from a torch.export (.pt2) "
            "version."
        )
    if not source.is_ready:
        raise RegistryError(f"{source.ref} is {source.status}; convert only validated versions.")


def model_version_convert_enqueue(*, version: ModelVersion, target: str, user: User | None) -> Job:
    """Queue a conversion (the web button): the `registry.convert` job converts and validates."""
    _check_source(version, target)
    with transaction.atomic():
        return job_create(
            kind=CONVERT_JOB,
            chunks=[
                {"source_id": version.pk, "target": target, "user_id": getattr(user, "pk", None)}
            ],
            queue="default",
            payload={"source_id": version.pk, "target": target, "ref": version.ref},
            created_by=user,
            max_attempts=1,  # a converter's refusal is deterministic; the page shows it
        )


def model_version_convert_now(*, source_id: int, target: str, user: User | None) -> ModelVersion:
    """Convert synchronously and register the child, validating it inline (CLI and job chunk)."""
    source = ModelVersion.objects.select_related("family").get(pk=source_id)
    _check_source(source, target)
    child_version = conversion_child_version(source, target)
    existing = ModelVersion.objects.filter(family=source.family, version=child_version).first()
    if existing is not None and existing.status != VersionStatus.REJECTED:
        return existing
    with temp_folder("registry-convert-") as folder:
        out, child_spec = _convert(source, target, Path(folder))
        registration = model_version_register(
            family=source.family.name,
            version=child_version,
            file=out,
            spec=child_spec,
            user=user,
            parent=source.version,
            notes=f"Converted from {source.ref} to {target}.",
            card=source.card,
            original_filename=out.name,
            conversion={
                "source": source.ref,
                "source_id": source.pk,
                "source_sha256": source.sha256,
                "target": target,
            },
            validate="inline",
        )
    return registration.version


def _convert(source: ModelVersion, target: str, folder: Path) -> tuple[Path, dict[str, Any]]:
    """Run the converter in a limited child process: torch/coremltools peaks stay out of the
    worker, and a converter crash costs the child only."""
    from pipelines.sandbox import SandboxError, SandboxLimits, run_in_sandbox

    stem = f"{source.family.name}-{source.version}"
    fn: Any
    if target == ModelFormat.ONNX:
        from pipelines.convert.to_onnx import export_onnx as fn

        out = folder / f"{stem}.onnx"
    else:
        from pipelines.convert.to_coreml import convert_coreml as fn

        out = folder / f"{stem}.mlpackage.zip"  # the converter zips the package folder
    try:
        child_spec = run_in_sandbox(
            fn,
            str(version_file(source)),
            source.spec,
            str(out),
            source_version=source.ref,
            limits=SandboxLimits(**CONVERSION_LIMITS),
        )
    except SandboxError as exc:
        raise ConversionFailed(f"{target} conversion of {source.ref} failed: {exc.reason}") from exc
    return out, dict(child_spec)
