"""Model registry data: families, immutable versions, aliases and the history of alias moves.

A version is immutable once registered (file, sha256, spec); only its validation status moves
uploaded -> validating -> ready | rejected. Versions start with a digit and aliases with a letter
(platform contract), so a reference `family:X` is never ambiguous.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from evalsite.core.names import (
    validate_alias_name,
    validate_family_name,
    validate_version_name,
)
from pipelines.spec.declared import declared_data

# Names are validated by evalsite.core.names, which every door (forms, CLI, API, admin) uses.
PRODUCTION = "production"
CANDIDATE = "candidate"


class ModelFormat(models.TextChoices):
    TORCH_EXPORT = "torch_export", "torch.export (.pt2)"
    TORCHSCRIPT = "torchscript", "TorchScript"
    ONNX = "onnx", "ONNX"
    COREML = "coreml", "Core ML"
    BUILTIN = "builtin", "built-in runner"
    #: No runnable file: results come only from `import_predictions` (made on a device, by another
    #: framework or a vendor). Workers never schedule it.
    EXTERNAL = "external", "external (predictions imported)"
    UNKNOWN = "unknown", "unknown"


class VersionStatus(models.TextChoices):
    UPLOADED = "uploaded"
    VALIDATING = "validating"
    READY = "ready"
    REJECTED = "rejected"


class ModelFamily(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[validate_family_name])
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "model families"
        constraints = [  # names are stored canonical (lower case); this holds it in the database
            models.UniqueConstraint(Lower("name"), name="family_name_unique_ci"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("registry:family", args=[self.name])


def version_upload_to(instance: ModelVersion, filename: str) -> str:
    """models/<family>/<version>/model<.ext>: one folder per immutable version, named by the
    registry's validated names only. The uploader's file name stays in `original_filename`: a
    stored key never carries it (two workers or a bucket listing see the same safe key), and only
    its extension is kept, when it is a plain one, because a Core ML archive is told by `.zip`."""
    suffix = PurePosixPath(filename).suffix.lower()
    if not re.fullmatch(r"\.[a-z0-9]{1,12}", suffix):
        suffix = ".bin"
    return f"models/{instance.family.name}/{instance.version}/model{suffix}"


class ModelVersion(models.Model):
    family = models.ForeignKey(ModelFamily, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=64, validators=[validate_version_name])
    format = models.CharField(
        max_length=16, choices=ModelFormat.choices, default=ModelFormat.UNKNOWN
    )
    file = models.FileField(upload_to=version_upload_to, max_length=500, blank=True)
    original_filename = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    size = models.BigIntegerField(default=0, help_text="bytes")
    spec = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16,
        choices=VersionStatus.choices,
        default=VersionStatus.UPLOADED,
        db_index=True,
    )
    rejection_reason = models.TextField(blank=True)
    status_note = models.CharField(
        max_length=255, blank=True, help_text="e.g. 'prediction on macOS workers only'"
    )
    validation_report = models.JSONField(default=dict, blank=True)
    validation_job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    validated_at = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    conversion = models.JSONField(
        default=dict, blank=True, help_text="for converted children: source version, sha256, tool"
    )
    card = models.TextField(blank=True, help_text="model card (markdown, shown as text)")
    notes = models.TextField(blank=True)
    provenance = models.TextField(
        blank=True, help_text="where this model and its predictions come from, in words"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["family__name", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["family", "version"], name="version_unique_in_family"),
            models.UniqueConstraint("family", Lower("version"), name="version_unique_in_family_ci"),
        ]

    def __str__(self) -> str:
        return self.ref

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("registry:version", args=[self.family.name, self.version])

    @property
    def ref(self) -> str:
        """The `family:version` reference the CLI, API and eval runner use."""
        return f"{self.family.name}:{self.version}"

    @property
    def is_ready(self) -> bool:
        return self.status == VersionStatus.READY

    @property
    def is_finished(self) -> bool:
        return self.status in {VersionStatus.READY, VersionStatus.REJECTED}

    @property
    def is_external(self) -> bool:
        """No runnable file: its runs are imported, never scheduled on a worker."""
        return self.format == ModelFormat.EXTERNAL

    @property
    def declared_data(self) -> dict[str, frozenset[str]]:
        """role (trained / tuned / selected) -> image digests its spec declares for it."""
        return declared_data(self.spec)


class Alias(models.Model):
    """A movable name (`production`, `candidate`, free names) pointing at one ready version."""

    family = models.ForeignKey(ModelFamily, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=64, validators=[validate_alias_name])
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["family__name", "name"]
        verbose_name_plural = "aliases"
        constraints = [
            models.UniqueConstraint(fields=["family", "name"], name="alias_unique_in_family"),
            models.UniqueConstraint("family", Lower("name"), name="alias_unique_in_family_ci"),
        ]

    def __str__(self) -> str:
        return f"{self.family.name}:{self.name}"


class AliasMove(models.Model):
    """Append-only history: who moved which alias from where to where, when and why."""

    alias = models.ForeignKey(Alias, on_delete=models.CASCADE, related_name="moves")
    from_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    moved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    moved_at = models.DateTimeField(auto_now_add=True, db_index=True)
    reason = models.TextField()

    class Meta:
        ordering = ["-moved_at", "-pk"]

    def __str__(self) -> str:
        src = self.from_version.version if self.from_version else "∅"
        return f"{self.alias}: {src} -> {self.to_version.version}"
