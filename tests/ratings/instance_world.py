"""A test world for instance-lift campaigns: a few of the demo's synthetic groups (one mask per
person) imported through the datasets service, and two finished runs whose ItemResult rows,
instance matches and instance cutouts are fabricated with the platform's own functions
(`match_instances`, `instance_cutouts`), so a campaign is built in about a second.

Run 0 ("subject-lift 1.0.0", production) lifts every person exactly. Run 1 ("subject-lift
2.0.0") misses the last person of every item and erodes the first person of odd items, so the
instance tasks hold gold (missed: IoU 0 against 1), clear preferences and ties.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from django.conf import settings
from PIL import Image

from evalsite.datasets.importing import dataset_import
from evalsite.datasets.models import DatasetVersion, Item
from evalsite.evals.models import EvalRun, ItemResult
from pipelines.metrics.functional import mask_iou
from pipelines.metrics.instances import match_instances
from pipelines.metrics.io import read_gray8
from pipelines.metrics.matting import boundary_iou
from pipelines.postprocess.cutout import instance_cutouts
from pipelines.postprocess.instances import separate_instances
from tests.evals.test_instance_runs import small_groups_set
from tests.ratings.builders import World, world_of


def _instances(item: Item) -> list[np.ndarray]:
    root = Path(settings.MEDIA_ROOT)
    return [read_gray8(root / inst["mask"]) > 127 for inst in item.instances]


def _prediction(kind: int, gt: list[np.ndarray], index: int) -> list[np.ndarray]:
    if kind == 0:
        return gt
    out = [m.copy() for m in gt[:-1]]
    if index % 2 and out:
        out[0] = cv2.erode(out[0].astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    return out


def _fabricate(run: EvalRun, kind: int) -> None:
    root = Path(settings.MEDIA_ROOT)
    rel = f"runs/{run.pk}"
    for index, item in enumerate(Item.objects.filter(version=run.dataset_version_id)):
        gt = _instances(item)
        pred = _prediction(kind, gt, index)
        alpha = np.zeros(gt[0].shape, np.uint8)
        for m in pred:
            alpha[m] = 255
        photo = np.asarray(Image.open(item.image.path).convert("RGB"))
        (root / rel / "web").mkdir(parents=True, exist_ok=True)
        (root / rel / "alpha").mkdir(parents=True, exist_ok=True)
        Image.fromarray(alpha).save(root / rel / "alpha" / f"{item.stem}.png")
        Image.fromarray(np.dstack([photo, alpha]), "RGBA").save(
            root / rel / "web" / f"{item.stem}.cutout.png"
        )
        instances = separate_instances(alpha, min_area_fraction=0.0)
        crops = []
        for n, crop in enumerate(instance_cutouts(photo, alpha, instances), start=1):
            name = f"web/{item.stem}.instance-{n}.png"
            Image.fromarray(crop, "RGBA").save(root / rel / name)
            crops.append({"full": f"{rel}/{name}", "web": f"{rel}/{name}"})
        scores = match_instances(gt, [instances.mask(i.label) for i in instances.items]).as_dict()
        whole_gt = np.logical_or.reduce(gt)
        iou = mask_iou(alpha > 127, whole_gt)
        ItemResult.objects.create(
            run=run, item=item, status="ok", iou=iou, metrics={"iou": iou},
            boundary_iou=boundary_iou((alpha > 127).astype(np.uint8), whole_gt.astype(np.uint8)),
            instance_iou=scores["instance_iou"], instance_boundary_iou=scores[
                "instance_boundary_iou"], instance_scores=scores,
            instance_count=len(crops),
            artefacts={"alpha": f"{rel}/alpha/{item.stem}.png",
                       "web_cutout": f"{rel}/web/{item.stem}.cutout.png", "instances": crops},
        )  # fmt: skip


def build_instance_world(tmp_path: Path, *, annotators: int = 3, name: str = "groups") -> World:
    result = dataset_import(path=small_groups_set(tmp_path), name=name)
    version = DatasetVersion.objects.select_related("dataset").get(pk=result.version.pk)
    return world_of(version, _fabricate, runs=2, annotators=annotators, config="instcfg")
