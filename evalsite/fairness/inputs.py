"""Loading what the fairness statistics need: per-image metrics of a run's person items, their
labels from one attribute revision, and the generator's recorded contrast.

Units (see pipelines.fairness.report): items whose labels say there is a person (skin tone or
perceived gender other than ``not_applicable``), with a subject mask (a "no subject" item has no
segmentation to judge and no subject the gate could hide), scored without error by the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from evalsite.datasets import vocab
from evalsite.datasets.models import AttributeRevision, AttributeSource, ItemAttribute, SizeBucket
from evalsite.datasets.selectors import revision_pick
from evalsite.evals.models import EvalRun, ItemResult, ResultStatus
from pipelines.metrics.registry import fairness_metrics

NO_PERSON_ATTRIBUTES = "no person attributes — annotate or import a manifest"
#: Metric columns read from ItemResult (the gated output: what users get); gated_rate from `gated`.
RESULT_METRICS = tuple(m.column for m in fairness_metrics() if m.stored and m.column)
#: The generator's manifest column with the subject/background contrast (CIE L* difference).
CONTRAST_KEY = "contrast"


class NoPersonAttributes(Exception):
    """The run's set has no attribute revision, or none of its labels marks a person."""

    def __init__(self, message: str = NO_PERSON_ATTRIBUTES) -> None:
        super().__init__(message)


@dataclass
class Inputs:
    revision: AttributeRevision
    item_ids: list[int]
    stems: list[str]
    skin_tone: list[str]
    perceived_gender: list[str]
    metrics: dict[str, np.ndarray]
    synthetic: int = 0
    contrast: np.ndarray | None = None
    labelled_persons: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def synthetic_labels(self) -> bool:
        return self.synthetic > 0


def person_attributes(revision: AttributeRevision) -> dict[int, tuple[str, str, str]]:
    """item id -> (skin tone, perceived gender, source) for the items labelled as a person."""
    rows = ItemAttribute.objects.filter(revision=revision).exclude(
        skin_tone=vocab.NOT_APPLICABLE, perceived_gender=vocab.NOT_APPLICABLE
    )
    return {
        item: (tone, gender, source)
        for item, tone, gender, source in rows.values_list(
            "item_id", "skin_tone", "perceived_gender", "source"
        )
    }


def revision_with_persons(
    *, run: EvalRun, number: int | None = None
) -> tuple[AttributeRevision, dict[int, tuple[str, str, str]]]:
    """The revision fairness uses (requested, else the latest) and its person labels."""
    revision = revision_pick(version=run.dataset_version, number=number)
    if revision is None:
        raise NoPersonAttributes()
    persons = person_attributes(revision)
    if not persons:
        raise NoPersonAttributes()
    return revision, persons


def _contrast(metadata: dict[str, object]) -> float:
    try:
        value = float(str(metadata.get(CONTRAST_KEY, "")))
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def load_inputs(*, run: EvalRun, revision_number: int | None = None) -> Inputs:
    """Person items of ``run`` with their metrics and labels; raises NoPersonAttributes."""
    revision, persons = revision_with_persons(run=run, number=revision_number)
    rows = (
        ItemResult.objects.filter(run=run, item_id__in=list(persons))
        .order_by("item__stem")
        .values_list("item_id", "item__stem", "item__size_bucket", "item__metadata", "status",
                     *RESULT_METRICS, "gated")
    )  # fmt: skip
    skipped = {"no_subject": 0, "failed": 0}
    ids, stems, tones, genders, synthetic = [], [], [], [], 0
    listed = list(rows)
    # A metric some scored item lacks (a run scored before the metric existed) is left out
    # rather than the item, as the paired statistics do; an item without IoU was not scored.
    scored = [r for r in listed if r[4] == ResultStatus.OK and r[2] != SizeBucket.NONE]
    kept = [i for i, _ in enumerate(RESULT_METRICS)
            if all(r[5 + i] is not None for r in scored)]  # fmt: skip
    core = RESULT_METRICS.index("iou")
    values: dict[str, list[float]] = {RESULT_METRICS[i]: [] for i in kept}
    values["gated_rate"] = []
    contrast: list[float] = []
    for item_id, stem, bucket, metadata, status, *scores, gated in listed:
        if bucket == SizeBucket.NONE:
            skipped["no_subject"] += 1
            continue
        if status != ResultStatus.OK or scores[core] is None:
            skipped["failed"] += 1
            continue
        tone, gender, source = persons[item_id]
        ids.append(item_id)
        stems.append(stem)
        tones.append(tone)
        genders.append(gender)
        synthetic += source == AttributeSource.SYNTHETIC
        for i in kept:
            values[RESULT_METRICS[i]].append(float(scores[i]))
        values["gated_rate"].append(1.0 if gated else 0.0)
        contrast.append(_contrast(metadata or {}))
    con = np.array(contrast, dtype=np.float64)
    return Inputs(
        revision=revision,
        item_ids=ids,
        stems=stems,
        skin_tone=tones,
        perceived_gender=genders,
        metrics={k: np.array(v, dtype=np.float64) for k, v in values.items()},
        synthetic=synthetic,
        contrast=con if np.isfinite(con).any() else None,
        labelled_persons=len(persons),
        skipped=skipped,
    )
