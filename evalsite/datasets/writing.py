"""Writing an import's result: stored files into the content-addressed store, rows in one
transaction, and attribute revisions (new labels on unchanged pictures become a new revision).

Split from importing.py, which decides *what* to write; this module only writes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from django.contrib.auth.models import User
from django.db import transaction

from evalsite.datasets import storage, vocab
from evalsite.datasets.models import (
    AttributeRevision,
    AttributeSource,
    Dataset,
    DatasetVersion,
    Item,
    ItemAttribute,
)
from evalsite.datasets.signals import attributes_revised
from evalsite.datasets.validation import Plan, PlannedItem
from pipelines.imaging import Blob, ItemOutcome

BULK_BATCH = 500  # rows per INSERT; SQLite's variable limit allows ~2000 params per statement


@dataclass
class ImportResult:
    outcome: str  # "created" | "unchanged" | "attributes_revised"
    version: DatasetVersion
    report: dict[str, Any]
    revision: AttributeRevision | None = None

    @property
    def message(self) -> str:
        v = self.version
        if self.outcome == "created":
            skipped = len(self.report.get("skipped", []))
            return (
                f"imported {v.spec} — {v.item_count} items ({v.no_subject_count} no subject, "
                f"{skipped} skipped)"
            )
        text = f"same content as {v.spec} — no new version"
        if self.outcome == "attributes_revised" and self.revision is not None:
            text += f"; attributes changed → attribute revision {self.revision.number}"
        return text


def _blobs(kept: list[tuple[PlannedItem, ItemOutcome]]) -> Iterator[Blob]:
    for _, o in kept:
        for blob in (o.image, o.mask, o.web, o.web_overlay, o.thumb, o.thumb_overlay):
            if blob is not None:
                yield blob
        for blob, _fg in o.instances:
            yield blob


def _item_row(version: DatasetVersion, p: PlannedItem, o: ItemOutcome) -> Item:
    def n(blob: Blob | None) -> str:
        assert blob is not None
        return storage.blob_name(blob.sha256, blob.ext)

    return Item(
        version=version,
        stem=p.stem,
        image=n(o.image),
        image_sha256=o.image.sha256,  # type: ignore[union-attr]
        mask=n(o.mask),
        mask_sha256=o.mask.sha256,  # type: ignore[union-attr]
        web=n(o.web),
        web_overlay=n(o.web_overlay),
        thumb=n(o.thumb),
        thumb_overlay=n(o.thumb_overlay),
        width=o.width,
        height=o.height,
        fg_fraction=o.fg_fraction,
        size_bucket=vocab.size_bucket(o.fg_fraction),
        instances=[
            {"mask": n(b), "sha256": b.sha256, "fg_fraction": round(fg, 6)} for b, fg in o.instances
        ],
        metadata={
            **p.metadata,
            "tags": p.tags,
            "original_image": p.image_label,
            "original_mask": p.mask_label,
        },
    )


def version_create(
    plan: Plan,
    kept: list[tuple[PlannedItem, ItemOutcome]],
    report: dict[str, Any],
    digest: str,
    *,
    name: str,
    user: User | None,
    description: str,
    licence: str,
) -> ImportResult:
    created_files = storage.blobs_commit(_blobs(kept))
    try:
        with transaction.atomic():
            dataset, _ = Dataset.objects.get_or_create(
                name=name,
                defaults={"description": description, "licence": licence, "created_by": user},
            )
            version = DatasetVersion.objects.create(
                dataset=dataset,
                content_hash=digest,
                item_count=len(kept),
                no_subject_count=report["no_subject"],
                created_by=user,
                import_source=str(report["source"])[:500],
                readme=plan.readme,
                report=report,
            )
            Item.objects.bulk_create(
                [_item_row(version, p, o) for p, o in kept], batch_size=BULK_BATCH
            )
            revision = None
            if plan.has_attributes:
                revision = _revision_create(
                    version,
                    [p for p, _ in kept],
                    user,
                    number=1,
                    note="labels from the import manifest",
                )
    except BaseException:
        storage.blobs_remove(created_files)
        raise
    return ImportResult("created", version, report, revision)


class Labelled(Protocol):
    """What a revision needs of an item: its stem and labels (a PlannedItem, or LabelRow)."""

    @property
    def stem(self) -> str: ...
    @property
    def skin_tone(self) -> str | None: ...
    @property
    def perceived_gender(self) -> str | None: ...
    @property
    def attribute_source(self) -> str: ...


@dataclass(frozen=True)
class LabelRow:
    stem: str
    skin_tone: str
    perceived_gender: str
    attribute_source: str


def _revision_source(planned: Sequence[Labelled]) -> str:
    sources = {p.attribute_source for p in planned}
    return sources.pop() if len(sources) == 1 else AttributeSource.MANIFEST


def _revision_create(
    version: DatasetVersion,
    planned: Sequence[Labelled],
    user: User | None,
    *,
    number: int,
    note: str,
    source: str | None = None,
) -> AttributeRevision:
    mixed = len({p.attribute_source for p in planned}) > 1
    revision = AttributeRevision.objects.create(
        version=version,
        number=number,
        source=source or _revision_source(planned),
        created_by=user,
        note=note + (" (mixed sources: see each label)" if mixed else ""),
    )
    items = dict(Item.objects.filter(version=version).values_list("stem", "pk"))
    ItemAttribute.objects.bulk_create(
        [
            ItemAttribute(
                revision=revision,
                item_id=items[p.stem],
                # Never None here (a revision is written only when labels were given; a blank
                # cell reads as "can't tell"), but the planned item's type allows it.
                skin_tone=p.skin_tone or vocab.UNKNOWN,
                perceived_gender=p.perceived_gender or vocab.UNKNOWN,
                source=p.attribute_source,
            )
            for p in planned
            if p.stem in items
        ],
        batch_size=BULK_BATCH,
    )
    return revision


def version_unchanged(
    version: DatasetVersion,
    plan: Plan,
    kept: list[tuple[PlannedItem, ItemOutcome]],
    user: User | None,
) -> ImportResult:
    """Same pictures: no new version; new labels in the manifest become an attribute revision."""
    if not plan.has_attributes:
        return ImportResult("unchanged", version, version.report)
    wanted = {p.stem: (p.skin_tone, p.perceived_gender, p.attribute_source) for p, _ in kept}
    latest = version.attribute_revisions.order_by("-number").first()
    current = (
        {}
        if latest is None
        else {
            stem: (t, g, s)
            for stem, t, g, s in latest.attributes.values_list(
                "item__stem", "skin_tone", "perceived_gender", "source"
            )
        }
    )
    if current == wanted:
        return ImportResult("unchanged", version, version.report, latest)
    with transaction.atomic():
        revision = _revision_create(
            version,
            [p for p, _ in kept],
            user,
            number=(latest.number + 1) if latest else 1,
            note="labels changed in a re-imported manifest",
        )
        transaction.on_commit(lambda: revision_added(version))
    return ImportResult("attributes_revised", version, version.report, revision)


def revision_added(version: DatasetVersion) -> None:
    """After a new attribute revision commits: the apps that derive from the labels hear of it
    (the fairness app recomputes the reports of the version's runs with it)."""
    attributes_revised.send(sender=DatasetVersion, version=version)


def attribute_revision_create(
    *,
    version: DatasetVersion,
    labels: dict[str, tuple[str, str]],
    source: str,
    user: User | None,
    note: str,
) -> AttributeRevision:
    """A new attribute revision from labels per stem: `{stem: (skin_tone, perceived_gender)}`
    (vocabulary words), all with `source` (e.g. `annotated`). Items without a label keep the one
    of the latest revision, so a partial annotation pass does not erase what was known."""
    bad = [s for s, (t, g) in labels.items() if t not in vocab.SKIN_TONES or g not in vocab.GENDERS]
    if bad:
        raise ValueError(f"labels outside the vocabulary for {', '.join(sorted(bad)[:5])}")
    with transaction.atomic():
        # Lock the version row: two accepts at once get consecutive numbers, not a clash.
        DatasetVersion.objects.select_for_update().filter(pk=version.pk).first()
        latest = version.attribute_revisions.order_by("-number").first()
        carried: dict[str, tuple[str, str, str]] = {}
        if latest is not None:
            carried = {
                stem: (t, g, src)
                for stem, t, g, src in latest.attributes.values_list(
                    "item__stem", "skin_tone", "perceived_gender", "source"
                )
            }
        for stem, (t, g) in labels.items():
            carried[stem] = (t, g, source)
        planned = [LabelRow(stem, t, g, src) for stem, (t, g, src) in sorted(carried.items())]
        revision = _revision_create(
            version,
            planned,
            user,
            number=(latest.number + 1) if latest else 1,
            note=note,
            source=source,
        )
        transaction.on_commit(lambda: revision_added(version))
    return revision
