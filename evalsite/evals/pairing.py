"""Two runs' per-image results lined up by item: the one pairing every paired statistic uses.

Why one module: the compare page's intervals and the release report's (`evalsite.releases.
services.gather`) must come from the same items in the same order, so that one seeded bootstrap
draw (`pipelines.release.deltas.paired_deltas`) gives both pages the same numbers.

Rules: items both runs scored successfully with an IoU, ordered by (stem, item id); metric columns
that every such item carries in both runs (a column missing on some item is left out rather than
the item); `dropped` counts the other items either run has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evalsite.evals.models import SORTABLE_METRICS, EvalRun, ItemResult, ResultStatus
from pipelines.metrics.registry import instance_metrics, stored_metrics


class NothingToPair(ValueError):
    """The two runs share no successfully scored item."""


@dataclass(frozen=True)
class PairedResults:
    items: list[dict[str, Any]]  # {"id", "stem"} in the order of every array below
    baseline: dict[str, NDArray[np.float64]]
    candidate: dict[str, NDArray[np.float64]]
    baseline_gated: NDArray[np.bool_]
    candidate_gated: NDArray[np.bool_]
    no_subject: NDArray[np.bool_]
    dropped: int
    # Metrics defined on items with instance masks only, paired over the `usable` items where
    # both runs have them (`instance_items`, in the same order): a separate, smaller sample.
    instance_items: list[dict[str, Any]] = field(default_factory=list)
    instance_baseline: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    instance_candidate: dict[str, NDArray[np.float64]] = field(default_factory=dict)


def paired_results(*, baseline: EvalRun, candidate: EvalRun) -> PairedResults:
    """Line up the two runs' stored per-image metrics (raises NothingToPair)."""
    fields = ("item_id", "item__stem", "item__size_bucket", "gated", *SORTABLE_METRICS)

    def rows(run: EvalRun) -> dict[int, dict[str, Any]]:
        qs = ItemResult.objects.filter(run=run, status=ResultStatus.OK).values(*fields)
        return {r["item_id"]: r for r in qs}

    base, cand = rows(baseline), rows(candidate)
    common = sorted(set(base) & set(cand), key=lambda i: (base[i]["item__stem"], i))
    usable = [i for i in common if base[i]["iou"] is not None and cand[i]["iou"] is not None]
    if not usable:
        raise NothingToPair(
            f"runs #{candidate.pk} and #{baseline.pk} share no successfully scored item; "
            "nothing can be compared"
        )
    # Paired deltas exist only for means of per-image values, so the metrics are the registry's
    # stored per-image metrics under their own names (the per-image `max_f` column averages to
    # "mean per-image max F", `image_max_f`, not the set curve's max F).
    metrics = {
        m.name: m.column
        for m in stored_metrics()
        if m.column
        and not m.instances
        and all(base[i][m.column] is not None and cand[i][m.column] is not None for i in usable)
    }
    inst_cols = {m.name: m.column for m in instance_metrics() if m.column}
    with_instances = [
        i for i in usable
        if all(base[i][c] is not None and cand[i][c] is not None for c in inst_cols.values())
    ]  # fmt: skip
    return PairedResults(
        instance_items=[{"id": i, "stem": base[i]["item__stem"]} for i in with_instances],
        instance_baseline={
            m: np.array([base[i][c] for i in with_instances], np.float64)
            for m, c in inst_cols.items()
        }
        if with_instances
        else {},
        instance_candidate={
            m: np.array([cand[i][c] for i in with_instances], np.float64)
            for m, c in inst_cols.items()
        }
        if with_instances
        else {},
        items=[{"id": i, "stem": base[i]["item__stem"]} for i in usable],
        baseline={
            m: np.array([base[i][c] for i in usable], np.float64) for m, c in metrics.items()
        },
        candidate={
            m: np.array([cand[i][c] for i in usable], np.float64) for m, c in metrics.items()
        },
        baseline_gated=np.array([base[i]["gated"] for i in usable], bool),
        candidate_gated=np.array([cand[i]["gated"] for i in usable], bool),
        no_subject=np.array([base[i]["item__size_bucket"] == "none" for i in usable], bool),
        dropped=len(set(base) | set(cand)) - len(usable),
    )
