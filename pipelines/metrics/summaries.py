"""Sections of a run's summary computed from its scored items: gating on no-subject and subject
items, the registry's slice metrics per size bucket and per tag, and the median image size.

Pure: the run's finalising step (`evals/services/aggregate.py`) hands its rows over as
`ScoredItem`s and stores what these return; the latency section is `pipelines.stats.latency.
latency_summary`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.metrics.registry import slice_metrics

#: Below this many pixels (median item) the page notes that latency was measured on small images,
#: because post-processing cost grows with the photo while the model's input stays 512².
SMALL_IMAGE_PIXELS = 2_000_000
SLICE_METRICS = slice_metrics()


@dataclass(frozen=True)
class ScoredItem:
    """What the summary needs of one item the model answered."""

    stem: str
    gated: bool
    no_subject: bool  # the ground truth has no foreground (size bucket "none")
    size_bucket: str
    tags: tuple[str, ...]
    width: int
    height: int


def gating_summary(items: Sequence[ScoredItem]) -> dict[str, Any]:
    """How gating behaved on no-subject items (should gate) and on items with a subject."""
    none = [i for i in items if i.no_subject]
    some = [i for i in items if not i.no_subject]
    return {
        "gated": sum(i.gated for i in items),
        "no_subject_items": len(none),
        "no_subject_gated": sum(i.gated for i in none),
        "subject_items": len(some),
        "subject_gated": sum(i.gated for i in some),
    }


def _slice_table(rows: list[tuple[str, ScoredItem, Mapping[str, float]]]) -> list[dict[str, Any]]:
    groups: dict[str, list[tuple[ScoredItem, Mapping[str, float]]]] = defaultdict(list)
    for key, item, m in rows:
        groups[key].append((item, m))
    table = []
    for key in sorted(groups):
        members = groups[key]
        entry: dict[str, Any] = {"slice": key, "n": len(members)}
        for metric in SLICE_METRICS:
            col = metric.column or metric.name
            entry[metric.name] = float(np.mean([m[col] for _, m in members]))
        entry["gated_rate"] = float(np.mean([item.gated for item, _ in members]))
        table.append(entry)
    return table


def slices(
    items: Sequence[ScoredItem], per_image: Mapping[str, Mapping[str, float]]
) -> dict[str, Any]:
    """Slice metrics' means and the gated share per size bucket and per tag (an item counts in
    every tag it has); ``per_image`` holds each item's per-image metrics by stem."""
    by_bucket = [(i.size_bucket, i, per_image[i.stem]) for i in items]
    by_tag = [(t, i, per_image[i.stem]) for i in items for t in i.tags]
    return {"size_bucket": _slice_table(by_bucket), "tag": _slice_table(by_tag)}


def image_size_note(items: Sequence[ScoredItem]) -> dict[str, Any]:
    """The median item size, and a note when latency was measured on small images."""
    w = int(np.median([i.width for i in items]))
    h = int(np.median([i.height for i in items]))
    note = ""
    if w * h < SMALL_IMAGE_PIXELS:
        note = f"latency measured on small images (median {w}×{h})"
    return {"median_width": w, "median_height": h, "note": note}
