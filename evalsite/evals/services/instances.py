"""Instance-level scores when a set has one mask per subject (matched-instance IoU, count accuracy).

Why greedy matching by IoU: a photo holds a handful of subjects, an instance is matched to at most
one ground-truth instance, and pairs below `MATCH_MIN_IOU` are not the same subject (the usual
0.5 rule of instance segmentation). Unmatched ground-truth instances count as IoU 0, so missing a
person lowers the score; extra predicted instances show up in the count accuracy instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from evalsite.datasets.models import Item
from pipelines.metrics.functional import mask_iou
from pipelines.metrics.io import read_gray8
from pipelines.postprocess.instances import Instances

MATCH_MIN_IOU = 0.5


def match_instances(gt: list[np.ndarray], pred: list[np.ndarray]) -> list[float]:
    """IoU of each ground-truth instance with its greedy best match (0 when unmatched)."""
    pairs = sorted(
        ((mask_iou(g, p), gi, pi) for gi, g in enumerate(gt) for pi, p in enumerate(pred)),
        reverse=True,
    )
    scores = [0.0] * len(gt)
    used_g: set[int] = set()
    used_p: set[int] = set()
    for iou, gi, pi in pairs:
        if iou < MATCH_MIN_IOU or gi in used_g or pi in used_p:
            continue
        used_g.add(gi)
        used_p.add(pi)
        scores[gi] = iou
    return scores


def instance_scores(item: Item, predicted: Instances) -> dict[str, Any]:
    """{} when the item has no instance masks; else matched IoUs and whether the count is right."""
    if not item.instances:
        return {}
    root = Path(settings.MEDIA_ROOT)
    gt = [read_gray8(root / inst["mask"]) > 127 for inst in item.instances]
    pred = [predicted.mask(i.label) for i in predicted.items]
    if any(g.shape != predicted.labels.shape for g in gt):
        return {"error": "instance masks differ in size from the prediction"}
    matched = match_instances(gt, pred)
    return {
        "gt_count": len(gt),
        "pred_count": len(pred),
        "count_correct": len(gt) == len(pred),
        "matched_iou": matched,
        "mean_matched_iou": float(np.mean(matched)) if matched else None,
    }
