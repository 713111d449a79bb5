"""Held-out sets: a named `Dataset`, immutable content-hashed `DatasetVersion`s, their `Item`s, and
attribute revisions layered on top.

Why attributes are not on `Item`: pictures are fixed once a version exists (reports must be
reproducible), but people annotate skin tone and gender later; each annotation pass is a new
`AttributeRevision`, the latest is the default, and a report names the revision it used.
Files live content-addressed under MEDIA_ROOT (evalsite/datasets/storage.py), so identical
pictures across versions and sets are stored once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from evalsite.datasets import vocab

HASH_SHOWN = 12  # hex digits shown in NAME:HASH; resolution accepts any prefix of >= 8


def _validate_groups(value: str) -> None:
    try:
        vocab.parse_skin_tone_groups(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


def _validate_name(value: str) -> None:
    problem = vocab.name_problem(value)
    if problem:
        raise ValidationError(problem)


class Dataset(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[_validate_name])
    description = models.TextField(blank=True)
    licence = models.CharField(max_length=500, blank=True)
    provenance = models.TextField(blank=True, help_text="where the pictures and masks come from")
    skin_tone_groups = models.CharField(
        max_length=100,
        default=vocab.DEFAULT_SKIN_TONE_GROUPS,
        validators=[_validate_groups],
        help_text="Monk-scale grouping used by fairness reports, e.g. 1-3,4-7,8-10",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def tone_groups(self) -> list[tuple[int, int]]:
        return vocab.parse_skin_tone_groups(self.skin_tone_groups)


class DatasetVersion(models.Model):
    """One immutable set of pictures; its identity is the content hash of the stored files."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    content_hash = models.CharField(max_length=64, db_index=True)
    item_count = models.PositiveIntegerField()
    no_subject_count = models.PositiveIntegerField(default=0, help_text="items with an empty mask")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    import_source = models.CharField(max_length=500, blank=True)
    readme = models.TextField(blank=True, help_text="README shipped with the imported files")
    report = models.JSONField(default=dict, blank=True, help_text="validation report of the import")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "content_hash"], name="version_unique_hash")
        ]

    def __str__(self) -> str:
        return self.spec

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("a dataset version is immutable; import a new version instead")
        super().save(*args, **kwargs)

    @property
    def short_hash(self) -> str:
        return self.content_hash[:HASH_SHOWN]

    @property
    def spec(self) -> str:
        """`NAME:HASHPREFIX`, the name other commands accept (dataset_version_resolve)."""
        return f"{self.dataset.name}:{self.short_hash}"


class SizeBucket(models.TextChoices):
    NONE = "none", "none (no subject)"
    SMALL = "small", "small (<5 %)"
    MEDIUM = "medium", "medium"
    LARGE = "large", "large (>30 %)"


class Item(models.Model):
    """One picture and its ground-truth mask, as stored (EXIF applied, mask binarised 0/255)."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="items")
    stem = models.CharField(max_length=255)
    image = models.FileField(max_length=255)
    image_sha256 = models.CharField(max_length=64, db_index=True)
    mask = models.FileField(max_length=255)
    mask_sha256 = models.CharField(max_length=64)
    # Derived copies for pages: JPEG, metadata stripped; the originals are never served.
    web = models.FileField(max_length=255, help_text="≤1024 px long side")
    web_overlay = models.FileField(max_length=255)
    thumb = models.FileField(max_length=255, help_text="≤256 px long side")
    thumb_overlay = models.FileField(max_length=255)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    fg_fraction = models.FloatField()
    size_bucket = models.CharField(max_length=8, choices=SizeBucket.choices, db_index=True)
    instances = models.JSONField(
        default=list, blank=True, help_text="[{mask, sha256, fg_fraction}] one per subject"
    )
    metadata = models.JSONField(default=dict, blank=True, help_text="tags + extra manifest columns")

    class Meta:
        ordering = ["version_id", "stem"]
        constraints = [models.UniqueConstraint(fields=["version", "stem"], name="item_unique_stem")]

    def __str__(self) -> str:
        return f"{self.stem} ({self.version_id})"

    @property
    def is_no_subject(self) -> bool:
        return self.size_bucket == SizeBucket.NONE

    @property
    def tags(self) -> list[str]:
        return list(self.metadata.get("tags", []))


class AttributeSource(models.TextChoices):
    MANIFEST = "manifest"
    ANNOTATED = "annotated"
    SYNTHETIC = "synthetic"


class AttributeRevision(models.Model):
    """One pass of attribute labels over a version (from a manifest, annotators or a generator)."""

    version = models.ForeignKey(
        DatasetVersion, on_delete=models.CASCADE, related_name="attribute_revisions"
    )
    number = models.PositiveIntegerField()
    source = models.CharField(max_length=16, choices=AttributeSource.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["version_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["version", "number"], name="revision_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.version} attributes r{self.number} ({self.source})"


class ItemAttribute(models.Model):
    """Labels of one item in one revision; `source` per label because a set may mix real and
    synthetic labels (a generator's drawn people next to real composites)."""

    revision = models.ForeignKey(
        AttributeRevision, on_delete=models.CASCADE, related_name="attributes"
    )
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="attributes")
    skin_tone = models.CharField(max_length=16, choices=[(t, t) for t in vocab.SKIN_TONES])
    perceived_gender = models.CharField(max_length=16, choices=[(g, g) for g in vocab.GENDERS])
    source = models.CharField(max_length=16, choices=AttributeSource.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["revision", "item"], name="attribute_unique_item")
        ]

    def __str__(self) -> str:
        return f"{self.item.stem}: tone {self.skin_tone}, {self.perceived_gender}"

    @property
    def is_synthetic(self) -> bool:
        return self.source == AttributeSource.SYNTHETIC


class ImportStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class DatasetImport(models.Model):
    """A web upload being imported by a worker; the progress bar reads `processed`/`total`."""

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    upload = models.CharField(max_length=500, help_text="path of the uploaded zip until processed")
    original_filename = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED, db_index=True
    )
    phase = models.CharField(max_length=32, blank=True)
    processed = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(max_length=32, blank=True)
    message = models.TextField(blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import of {self.name} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {ImportStatus.DONE, ImportStatus.FAILED}
