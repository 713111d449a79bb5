"""Registering model versions (one service behind the web form, the CLI and the REST API).

A version row is written for every attempt that names a valid family and version, so a refused
upload (pickle, junk, unsafe zip, bad spec) ends as `rejected` with the exact reason, like a model
that fails validation. Refused bytes are never stored. A rejected version string may be
registered again (its row is replaced); a version with any other status is immutable.

An `external` version has no file and nothing to validate: it is ready at once, and its runs come
only from `import_predictions` (predictions made on a device, by another framework or a vendor).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from django.contrib.auth.models import User
from django.core.files import File
from django.db import IntegrityError, transaction

from evalsite.core.names import NameRejected, canonical_name, lookalike_check
from evalsite.core.text import text_problems
from models.errors import RegistryError
from models.models import (
    ModelFamily,
    ModelFormat,
    ModelVersion,
    VersionStatus,
)
from models.services.staging import ModelFileCheck, model_file_check, spec_check, staged_path
from models.services.validation import model_version_validate, validation_job_create
from pipelines.hashing import sha256_file
from pipelines.payloads import JsonObject

ValidateMode = Literal["inline", "job", "none"]
#: What an external version's pages and run-start refusals say about it.
EXTERNAL_NOTE = "predictions imported, not run here"


@dataclass(frozen=True)
class Registration:
    version: ModelVersion
    created: bool  # False: this exact file was already registered under this version


def model_family_get_or_create(*, name: str, user: User | None = None) -> ModelFamily:
    try:
        name = canonical_name(name, kind="family")
        if not ModelFamily.objects.filter(name=name).exists():
            names = ModelFamily.objects.values_list("name", flat=True)
            lookalike_check(name, kind="family", existing=list(names))
    except NameRejected as exc:
        raise RegistryError(str(exc)) from exc
    family, _ = ModelFamily.objects.get_or_create(name=name, defaults={"created_by": user})
    return family


def model_version_register(
    *,
    family: str,
    version: str,
    file: Path | File[bytes] | None,
    spec: JsonObject | None,
    user: User | None = None,
    parent: str | None = None,
    notes: str = "",
    card: str = "",
    original_filename: str = "",
    conversion: JsonObject | None = None,
    validate: ValidateMode = "job",
    external: bool = False,
    provenance: str = "",
) -> Registration:
    """Register `family:version` from a model file (or a builtin spec when `file` is None).

    validate: "inline" runs the sandbox validation now (CLI, demo), "job" enqueues the
    `registry.validate` job after commit (web, API), "none" leaves it `uploaded` (tests).
    external: no file and no spec; the version is ready at once and only imported runs use it.
    """
    too_long = text_problems({"notes": notes, "card": card, "provenance": provenance})
    if too_long:
        raise RegistryError(" ".join(too_long))
    try:
        version = canonical_name(version, kind="version")
    except NameRejected as exc:
        raise RegistryError(str(exc)) from exc
    with transaction.atomic():  # an unknown parent leaves no new, empty family behind
        fam = model_family_get_or_create(name=family, user=user)
        try:  # `1.2.o` or `1.2.0` beside the other is refused, naming the existing one
            lookalike_check(
                version, kind="version", existing=fam.versions.values_list("version", flat=True)
            )
        except NameRejected as exc:
            raise RegistryError(f"{fam.name}: {exc}") from exc
        parent_row = _parent(fam, parent)
    fields: dict[str, Any] = {
        "spec": spec or {},
        "created_by": user,
        "parent": parent_row,
        "notes": notes,
        "card": card,
        "conversion": conversion or {},
        "provenance": provenance,
    }
    if external:
        if file is not None or spec is not None:
            raise RegistryError(
                f"{family}:{version} is external (predictions imported, not run here): "
                "give no model file and no spec."
            )
        fields.update(sha256="", size=0, status_note=EXTERNAL_NOTE)
        verdict = ModelFileCheck(ModelFormat.EXTERNAL, "")
        row, created = _write(fam, version, verdict, None, "none", user, fields)
        return Registration(row, created=created)
    doc: dict[str, Any] | None = dict(spec) if spec is not None else None
    if file is None:
        verdict = _builtin_check(doc)
        row, created = _write(
            fam, version, verdict, None, validate, user, {**fields, "sha256": "", "size": 0}
        )
    else:
        with staged_path(file) as path:
            name = Path(original_filename or getattr(file, "name", "") or path.name).name
            verdict = model_file_check(path, doc, display_name=name)
            fields.update(
                sha256=sha256_file(path), size=path.stat().st_size, original_filename=name
            )
            row, created = _write(fam, version, verdict, path, validate, user, fields)
    if created and validate == "inline" and not verdict.reason:
        row = model_version_validate(version_id=row.pk)
    return Registration(row, created=created)


def _write(
    fam: ModelFamily,
    version: str,
    verdict: ModelFileCheck,
    path: Path | None,
    validate: ValidateMode,
    user: User | None,
    fields: dict[str, Any],
) -> tuple[ModelVersion, bool]:
    """Create the row (and store accepted bytes) in one transaction; enqueue after commit."""
    try:
        with transaction.atomic():
            existing = _existing(fam, version, fields["sha256"], verdict.format)
            if existing is not None:
                return existing, False
            rejected = bool(verdict.reason)
            status = VersionStatus.REJECTED if rejected else VersionStatus.UPLOADED
            if verdict.format == ModelFormat.EXTERNAL:  # nothing to validate
                status = VersionStatus.READY
            row = ModelVersion.objects.create(
                family=fam,
                version=version,
                format=verdict.format,
                status=status,
                rejection_reason=f"Refused at upload: {verdict.reason}" if rejected else "",
                **fields,
            )
            if path is not None and not rejected:
                with open(path, "rb") as fh:
                    row.file.save(fields.get("original_filename") or "model.bin", File(fh))
            if validate == "job" and not rejected:
                job = validation_job_create(version=row, user=user)
                ModelVersion.objects.filter(pk=row.pk).update(validation_job=job)
                row.validation_job = job
    except IntegrityError as exc:  # the same version registered concurrently
        raise RegistryError(
            f"{fam.name}:{version} was registered by someone else just now; reload and check."
        ) from exc
    return row, True


def _parent(fam: ModelFamily, parent: str | None) -> ModelVersion | None:
    if not parent:
        return None
    ref = parent.split(":", 1)[1] if ":" in parent else parent
    try:
        ref = canonical_name(ref, kind="version")
    except NameRejected as exc:
        raise RegistryError(f"Parent: {exc}") from exc
    row = ModelVersion.objects.filter(family=fam, version=ref).first()
    if row is None:
        known = ", ".join(fam.versions.values_list("version", flat=True)) or "none yet"
        raise RegistryError(f"Parent version {fam.name}:{ref} does not exist (known: {known}).")
    return row


def _existing(fam: ModelFamily, version: str, digest: str, fmt: str) -> ModelVersion | None:
    """The same registration again (same bytes) returns the row; a rejected row is replaced."""
    row = ModelVersion.objects.select_for_update().filter(family=fam, version=version).first()
    if row is None:
        return None
    if row.status != VersionStatus.REJECTED:
        if row.sha256 == digest and (digest or row.format == fmt):
            return row
        if ModelFormat.EXTERNAL in (row.format, fmt):
            raise RegistryError(
                f"{row.ref} already exists (format {row.get_format_display()}); versions "
                "are immutable, so register under a new version string."
            )
        raise RegistryError(
            f"{row.ref} already exists with a different file (sha256 {row.sha256[:12]}…); "
            "versions are immutable, so register the new file under a new version string."
        )
    if row.children.exists():
        raise RegistryError(f"{row.ref} is rejected but has child versions; use a new version.")
    stored = row.file.name
    row.delete()
    if stored:
        transaction.on_commit(lambda: row.file.storage.delete(stored))
    return None


def _builtin_check(spec: dict[str, Any] | None) -> ModelFileCheck:
    reason = spec_check(spec, ModelFormat.BUILTIN)
    if not reason and spec is not None:
        from pipelines.runners import builtin_names

        name = spec.get("builtin")
        if name not in builtin_names():
            reason = f"Unknown builtin runner {name!r}; available: {', '.join(builtin_names())}."
    return ModelFileCheck(ModelFormat.BUILTIN, reason)


def card_for_spec(spec: dict[str, Any] | None, spec_path: Path | None) -> str:
    """The model card text: `training.card` names a file beside the spec, or is the text itself."""
    value = ((spec or {}).get("training") or {}).get("card") or ""
    if not value:
        return ""
    if spec_path is not None and "\n" not in value and len(value) < 255:
        candidate = spec_path.parent / value
        if candidate.is_file():
            return candidate.read_text(errors="replace")
    return str(value)
