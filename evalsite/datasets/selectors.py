"""Read-only queries of held-out sets, with the joins chosen here rather than in views/templates."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, Prefetch, QuerySet

from evalsite.core import names
from evalsite.datasets import vocab
from evalsite.datasets.errors import DatasetNotFound, VersionSpecError
from evalsite.datasets.models import (
    AttributeRevision,
    AttributeSource,
    Dataset,
    DatasetImport,
    DatasetVersion,
    Item,
    ItemAttribute,
    SizeBucket,
)

MIN_PREFIX = 8
GRID_PAGE_SIZE = 48
HEX_RE = re.compile(r"^[0-9a-f]+$")


def dataset_list() -> QuerySet[Dataset]:
    return Dataset.objects.annotate(version_count=Count("versions")).prefetch_related(
        Prefetch("versions", queryset=DatasetVersion.objects.order_by("-created_at", "-pk"))
    )


def set_name_problem(name: str) -> str | None:
    """Why `name` cannot name a set: the name rules, or a look-alike of another set's name.

    The same name is fine (a new version of that set); `pasca1-s-demo` beside `pascal-s-demo`
    is not. Every door of a set import asks this (web form, upload service, import service).
    """
    problem = vocab.name_problem(name)
    if problem:
        return problem
    existing = Dataset.objects.values_list("name", flat=True)
    try:
        names.lookalike_check(name, kind="set", existing=list(existing))
    except names.NameRejected as exc:
        return str(exc)
    return None


def dataset_get(*, name: str) -> Dataset:
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None:
        raise DatasetNotFound(f"no set named {name!r}")
    return dataset


def dataset_versions(*, dataset: Dataset) -> QuerySet[DatasetVersion]:
    return dataset.versions.select_related("created_by").annotate(
        revision_count=Count("attribute_revisions")
    )


def dataset_version_resolve(spec: str) -> DatasetVersion:
    """`NAME` (latest version) or `NAME:HASHPREFIX` (>= 8 hex digits) → one version.

    Raises VersionSpecError saying what exists, so a CLI user can correct the spec.
    """
    name, sep, prefix = spec.strip().partition(":")
    dataset = Dataset.objects.filter(name=name).first() if name else None
    if dataset is None:
        known = ", ".join(Dataset.objects.values_list("name", flat=True)[:20]) or "none"
        raise VersionSpecError(f"no set named {name!r} (known sets: {known})")
    versions = dataset.versions.select_related("dataset")
    if not sep:
        latest = versions.order_by("-created_at", "-pk").first()
        if latest is None:
            raise VersionSpecError(f"set {name!r} has no versions yet")
        return latest
    prefix = prefix.lower()
    if len(prefix) < MIN_PREFIX or not HEX_RE.match(prefix) or len(prefix) > 64:
        raise VersionSpecError(
            f"{spec!r}: the hash prefix must be {MIN_PREFIX}-64 hex digits, got {prefix!r}"
        )
    matches = list(versions.filter(content_hash__startswith=prefix)[:5])
    if len(matches) == 1:
        return matches[0]
    available = ", ".join(v.spec for v in versions.order_by("-created_at")[:10])
    if not matches:
        raise VersionSpecError(f"set {name!r} has no version {prefix} (versions: {available})")
    raise VersionSpecError(
        f"{spec!r} is ambiguous: it matches {', '.join(v.content_hash[:16] for v in matches)}; "
        "give more hex digits"
    )


def version_get(*, dataset: Dataset, prefix: str) -> DatasetVersion:
    try:
        return dataset_version_resolve(f"{dataset.name}:{prefix}")
    except VersionSpecError:
        raise DatasetNotFound(f"no version {dataset.name}:{prefix}") from None


def revision_pick(
    *, version: DatasetVersion, number: int | None = None
) -> AttributeRevision | None:
    """The requested attribute revision, else the latest (the default everywhere)."""
    revisions = version.attribute_revisions.select_related("created_by")
    if number is not None:
        found = revisions.filter(number=number).first()
        if found is not None:
            return found
    return revisions.order_by("-number").first()


@dataclass
class CountRow:
    label: str
    count: int
    synthetic: int = 0


def version_counts(
    *, version: DatasetVersion, revision: AttributeRevision | None
) -> dict[str, list[CountRow]]:
    """Counts per size bucket, skin-tone group (the set's grouping) and perceived gender."""
    buckets = dict(
        version.items.values_list("size_bucket")
        .annotate(n=Count("id"))
        .values_list("size_bucket", "n")
    )
    result = {
        "size": [CountRow(str(c.label), buckets.get(c.value, 0)) for c in SizeBucket],
        "skin_tone": [],
        "gender": [],
    }
    if revision is None:
        return result
    groups = version.dataset.tone_groups()
    tone: Counter[str] = Counter()
    tone_syn: Counter[str] = Counter()
    gender: Counter[str] = Counter()
    gender_syn: Counter[str] = Counter()
    rows = revision.attributes.values_list("skin_tone", "perceived_gender", "source")
    for t, g, s, n in rows.annotate(n=Count("id")).values_list(
        "skin_tone", "perceived_gender", "source", "n"
    ):
        label = vocab.skin_tone_group(t, groups)
        tone[label] += n
        gender[g] += n
        if s == AttributeSource.SYNTHETIC:
            tone_syn[label] += n
            gender_syn[g] += n
    labelled = sum(gender.values())
    order = [vocab.group_label(gr) for gr in groups] + [vocab.NOT_APPLICABLE, vocab.UNKNOWN]
    result["skin_tone"] = [CountRow(k, tone[k], tone_syn[k]) for k in order]
    result["gender"] = [CountRow(k, gender[k], gender_syn[k]) for k in vocab.GENDERS]
    if labelled < version.item_count:
        result["skin_tone"].append(CountRow("unlabelled", version.item_count - labelled))
        result["gender"].append(CountRow("unlabelled", version.item_count - labelled))
    return result


def version_items_page(
    *,
    version: DatasetVersion,
    revision: AttributeRevision | None,
    page: Any,
    bucket: str | None = None,
) -> Page:
    """One page of the thumbnail grid, each item carrying `labels` of the chosen revision."""
    items = version.items.order_by("stem")
    if bucket in SizeBucket.values:
        items = items.filter(size_bucket=bucket)
    if revision is not None:
        items = items.prefetch_related(
            Prefetch(
                "attributes",
                queryset=ItemAttribute.objects.filter(revision=revision),
                to_attr="labels",
            )
        )
    return Paginator(items, GRID_PAGE_SIZE).get_page(page)


def revision_synthetic_count(*, revision: AttributeRevision | None) -> int:
    if revision is None:
        return 0
    return revision.attributes.filter(source=AttributeSource.SYNTHETIC).count()


def version_licences(*, version: DatasetVersion) -> list[tuple[str, int]]:
    """Distinct per-item `licence` metadata with counts (provenance panel)."""
    counter: Counter[str] = Counter(
        (m or {}).get("licence", "") for m in version.items.values_list("metadata", flat=True)
    )
    return sorted(((k, n) for k, n in counter.items() if k), key=lambda kv: -kv[1])


def item_get(*, item_id: int) -> Item:
    item = Item.objects.filter(pk=item_id).first()
    if item is None:
        raise DatasetNotFound(f"no item #{item_id}")
    return item


def import_get(*, import_id: int) -> DatasetImport:
    imp = DatasetImport.objects.select_related("version__dataset", "job").filter(pk=import_id)
    if (row := imp.first()) is None:
        raise DatasetNotFound(f"no import #{import_id}")
    return row


def import_recent(*, limit: int = 10) -> QuerySet[DatasetImport]:
    return DatasetImport.objects.select_related("version__dataset")[:limit]
