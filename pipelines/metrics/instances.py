"""Instance lifts, evaluated one by one: predicted instances matched to ground-truth instances.

Why one-to-one at an IoU threshold (instance segmentation's usual rule, 0.5 by default): a photo
holds a handful of subjects and a lifted sticker is one of them; a predicted instance is the lift
of at most one person, and a pair below the threshold is not the same subject. Matching maximises
the summed IoU over pairs at or above the threshold (the Hungarian method,
`scipy.optimize.linear_sum_assignment`); with disjoint instances every IoU above 0.5 has a single
partner anyway, so this only settles exact-0.5 ties, deterministically.

Per item (`match_instances(...).as_dict()`, stored as `ItemResult.instance_scores`; its numbering
is what the rest of the platform uses: GT instance k = the item's k-th instance mask, predicted
instance n = the run's `instance-n` cutout):

* ``pairs``: ``[{"gt": k, "pred": n, "iou", "boundary_iou"}]`` for the matched pairs;
* ``missed``: GT instances with no partner; ``extra``: predicted instances with no partner;
* ``gt_count``, ``pred_count``, ``count_correct`` (the two counts agree), ``threshold``;
* ``recall`` = matched / GT instances, ``precision`` = matched / predicted instances (0 when none
  was predicted);
* ``instance_iou`` / ``instance_boundary_iou``: the mean over GT instances of the IoU / Boundary
  IoU with its partner, 0 for a missed instance (a missed person lowers the item's score);
* ``matched_iou`` (per GT instance, 0 when missed) and ``mean_matched_iou`` (= instance_iou) keep
  the keys older runs stored.

A run's summary (`summarise`) gives per-image means by default and, named as such, the figures
pooled over all instances of the set (metrics.md: pixels — here instances — are never pooled
silently).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from .functional import mask_iou
from .matting import boundary_erosion, boundary_region

MATCH_MIN_IOU = 0.5
#: The per-item values a run averages over its items with instance masks (registry names).
ITEM_KEYS = ("instance_iou", "instance_boundary_iou", "instance_recall", "instance_count_ok")


@dataclass(frozen=True)
class InstanceMatch:
    gt_count: int
    pred_count: int
    pairs: list[dict[str, Any]]  # {"gt": k, "pred": n, "iou", "boundary_iou"} (1-based)
    missed: list[int]
    extra: list[int]
    threshold: float

    @property
    def matched(self) -> int:
        return len(self.pairs)

    def as_dict(self) -> dict[str, Any]:
        per_gt_iou = [0.0] * self.gt_count
        per_gt_biou = [0.0] * self.gt_count
        for p in self.pairs:
            per_gt_iou[p["gt"] - 1] = p["iou"]
            per_gt_biou[p["gt"] - 1] = p["boundary_iou"]
        mean_iou = float(np.mean(per_gt_iou)) if self.gt_count else None
        return {
            "threshold": self.threshold,
            "gt_count": self.gt_count,
            "pred_count": self.pred_count,
            "count_correct": self.gt_count == self.pred_count,
            "matched": self.matched,
            "pairs": self.pairs,
            "missed": self.missed,
            "extra": self.extra,
            "recall": self.matched / self.gt_count if self.gt_count else None,
            "precision": self.matched / self.pred_count if self.pred_count else 0.0,
            "instance_iou": mean_iou,
            "instance_boundary_iou": float(np.mean(per_gt_biou)) if self.gt_count else None,
            "matched_iou": per_gt_iou,
            "mean_matched_iou": mean_iou,
        }


def match_instances(
    gt: Sequence[np.ndarray], pred: Sequence[np.ndarray], *, threshold: float = MATCH_MIN_IOU
) -> InstanceMatch:
    """Match predicted to GT instance masks (boolean, one shape) one-to-one at IoU >= threshold.

    Boundary IoU of a pair uses the whole image's diagonal for its band, as for a whole cutout.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"the matching threshold must be within (0, 1], got {threshold}")
    shapes = {np.shape(m) for m in (*gt, *pred)}
    if len(shapes) > 1:
        raise ValueError(f"instance masks differ in size: {sorted(shapes)}")
    iou = np.zeros((len(gt), len(pred)))
    for i, g in enumerate(gt):
        for j, p in enumerate(pred):
            iou[i, j] = mask_iou(g, p)
    eligible = np.where(iou >= threshold, iou, 0.0)
    rows, cols = linear_sum_assignment(eligible, maximize=True) if iou.size else ([], [])
    pairs = []
    d = boundary_erosion(next(iter(shapes))) if shapes else 1
    for i, j in sorted(zip(rows, cols, strict=True)):
        if iou[i, j] < threshold:
            continue
        gb = boundary_region(gt[i], d)
        pb = boundary_region(pred[j], d)
        union = int(np.count_nonzero(gb | pb))
        biou = 1.0 if union == 0 else int(np.count_nonzero(gb & pb)) / union
        pairs.append({"gt": int(i) + 1, "pred": int(j) + 1, "iou": float(iou[i, j]),
                      "boundary_iou": float(biou)})  # fmt: skip
    matched_gt = {p["gt"] for p in pairs}
    matched_pred = {p["pred"] for p in pairs}
    return InstanceMatch(
        gt_count=len(gt),
        pred_count=len(pred),
        pairs=pairs,
        missed=[k for k in range(1, len(gt) + 1) if k not in matched_gt],
        extra=[n for n in range(1, len(pred) + 1) if n not in matched_pred],
        threshold=float(threshold),
    )


def item_scores(
    gt: Sequence[np.ndarray], pred: Sequence[np.ndarray], shape: tuple[int, ...]
) -> dict[str, Any]:
    """An item's stored instance scores: {} when it has no GT instance masks, an ``error`` when
    they differ in size from the prediction (``shape``), else `match_instances(...).as_dict()`."""
    if not gt:
        return {}
    if any(np.shape(g) != tuple(shape) for g in gt):
        return {"error": "instance masks differ in size from the prediction"}
    return match_instances(gt, pred).as_dict()


def _matched(scores: Mapping[str, Any]) -> int:
    """Matched pairs of stored scores (older rows: the GT instances with a non-zero IoU)."""
    matched = scores.get("matched")
    if matched is None:
        matched = sum(1 for v in scores.get("matched_iou") or [] if v)
    return int(matched)


def item_values(scores: Mapping[str, Any]) -> dict[str, float | None] | None:
    """The per-item values of `ITEM_KEYS` from a stored `as_dict()` (None without GT instances).

    Rows stored before per-instance boundary IoU existed carry only `matched_iou`; their
    boundary IoU is None, never a guess.
    """
    gt_count = int(scores.get("gt_count") or 0)
    if not gt_count:
        return None
    matched_iou = scores.get("matched_iou") or []
    biou = scores.get("instance_boundary_iou")
    return {
        "instance_iou": float(np.mean(matched_iou)) if matched_iou else 0.0,
        "instance_boundary_iou": None if biou is None else float(biou),
        "instance_recall": _matched(scores) / gt_count,
        "instance_count_ok": 1.0 if scores.get("count_correct") else 0.0,
    }


def item_columns(scores: Mapping[str, Any]) -> dict[str, float | None]:
    """Every `ITEM_KEYS` value of stored scores, None where the item has no GT instances."""
    values = item_values(scores) or {}
    return {key: values.get(key) for key in ITEM_KEYS}


@dataclass(frozen=True)
class Lift:
    """A run's lift of one GT instance: its matched predicted instance (None = missed) and that
    pair's IoU and Boundary IoU (0 when missed, as the instance metrics count it)."""

    pred: int | None
    iou: float
    boundary_iou: float


def lifts(scores: Mapping[str, Any], cutouts: int) -> dict[int, Lift]:
    """GT instance k (1-based) → the run's lift of it, from stored scores; a pair whose predicted
    instance has no cutout among the run's ``cutouts`` counts as missed (nothing to show)."""
    pairs = {int(p["gt"]): p for p in scores.get("pairs") or []}
    out: dict[int, Lift] = {}
    for k in range(1, int(scores.get("gt_count") or 0) + 1):
        p = pairs.get(k)
        if p is None or not 1 <= int(p["pred"]) <= cutouts:
            out[k] = Lift(None, 0.0, 0.0)
        else:
            out[k] = Lift(int(p["pred"]), float(p["iou"]), float(p.get("boundary_iou") or 0.0))
    return out


def summarise(per_item: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A run's instance section from its items' stored scores (None when no item has GT
    instances). Per-image means are the headline; `pooled` sums instances over the set."""
    rows = [s for s in per_item if int(s.get("gt_count") or 0)]
    if not rows:
        return None
    values = [item_values(s) or {} for s in rows]
    out: dict[str, Any] = {"items": len(rows)}
    for key in ITEM_KEYS:
        present = [float(v) for row in values if (v := row.get(key)) is not None]
        out[key] = float(np.mean(present)) if present else None
    gt_total = sum(int(s["gt_count"]) for s in rows)
    pred_total = sum(int(s.get("pred_count") or 0) for s in rows)
    matched = [_matched(s) for s in rows]
    all_iou = [float(x) for s in rows for x in (s.get("matched_iou") or [])]
    precision = [m / int(s["pred_count"]) if int(s.get("pred_count") or 0) else 0.0
                 for m, s in zip(matched, rows, strict=True)]  # fmt: skip
    out.update(
        {
            "gt_instances": gt_total,
            "pred_instances": pred_total,
            "matched": sum(matched),
            "missed": gt_total - sum(matched),
            "extra": pred_total - sum(matched),
            "threshold": float(rows[0].get("threshold", MATCH_MIN_IOU)),
            # per-image mean of matched / predicted (an item with no prediction scores 0)
            "instance_precision": float(np.mean(precision)),
            "pooled": {
                "instance_recall": sum(matched) / gt_total,
                "instance_precision": sum(matched) / pred_total if pred_total else 0.0,
                "instance_iou": float(np.mean(all_iou)) if all_iou else None,
            },
            # the keys older run pages read
            "count_accuracy": out["instance_count_ok"],
            "mean_matched_iou": out["instance_iou"],
        }
    )
    return out


__all__ = ["ITEM_KEYS", "MATCH_MIN_IOU", "InstanceMatch", "item_values", "match_instances",
           "summarise"]  # fmt: skip
