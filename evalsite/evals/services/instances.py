"""Instance-level scores when a set has one mask per subject: the item's GT instance masks read
here, matched to the run's predicted instances by `pipelines.metrics.instances` (one-to-one at
IoU >= 0.5, per-instance IoU and Boundary IoU, missed and extra instances, count)."""

from __future__ import annotations

from typing import Any

from evalsite.datasets.models import Item
from evalsite.datasets.storage import item_file
from pipelines.masks import gt_foreground
from pipelines.metrics.instances import item_scores
from pipelines.metrics.io import read_gray8
from pipelines.postprocess.instances import Instances


def instance_scores(item: Item, predicted: Instances) -> dict[str, Any]:
    """{} when the item has no instance masks; else `pipelines.metrics.instances.item_scores`."""
    if not item.instances:
        return {}
    gt = [gt_foreground(read_gray8(item_file(inst["mask"]))) for inst in item.instances]
    pred = [predicted.mask(i.label) for i in predicted.items]
    return item_scores(gt, pred, predicted.labels.shape)
