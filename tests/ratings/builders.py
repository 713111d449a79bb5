"""Test worlds for ratings: a tiny set imported through the datasets service, and finished runs
whose ItemResult rows and PNG artefacts are fabricated directly (no model, no worker), so a
campaign can be built in well under a second.

Run 0 ("subject-lift 1.0.0", production) outputs the ground truth; run 1 ("subject-lift 2.0.0")
outputs a mask shifted far off the subject on even items (gross failures → gold candidates) and
the truth on odd ones; a third run, when asked for, erodes the truth a little.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from PIL import Image

from evalsite.datasets.models import DatasetVersion, Item
from evalsite.evals.models import EvalRun, ItemResult
from models.models import PRODUCTION, Alias
from pipelines.metrics.functional import mask_iou
from ratings.models import Campaign
from ratings.services.campaigns import campaign_create
from tests.evals.factories import done_run_row, tiny_set, tiny_spec, user_with, version_row

MODEL_NAMES = ("subject-lift",)
VERSIONS = ("1.0.0", "2.0.0", "3.0.0")


def _output(kind: int, mask: np.ndarray, index: int) -> np.ndarray:
    if kind == 0:
        return mask
    if kind == 1:
        if index % 2 == 0:
            return np.roll(mask, (mask.shape[0] // 2, mask.shape[1] // 2), axis=(0, 1))
        return mask
    out = mask.copy()
    out[:, : mask.shape[1] // 8] = False
    return out


def _write(path: Path, image: Image.Image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def fabricate_results(run: EvalRun, kind: int) -> None:
    root = Path(settings.MEDIA_ROOT)
    for index, item in enumerate(Item.objects.filter(version=run.dataset_version_id)):
        gt = np.asarray(Image.open(item.mask.path).convert("L")) >= 128
        pred = _output(kind, gt, index)
        photo = np.asarray(Image.open(item.image.path).convert("RGB"))
        alpha = (pred * 255).astype(np.uint8)
        rel = f"runs/{run.pk}"
        _write(root / rel / "alpha" / f"{item.stem}.png", Image.fromarray(alpha))
        rgba = np.dstack([photo, alpha])
        _write(root / rel / "web" / f"{item.stem}.cutout.png", Image.fromarray(rgba, "RGBA"))
        iou = mask_iou(pred, gt)
        ItemResult.objects.create(
            run=run,
            item=item,
            status="ok",
            iou=iou,
            metrics={"iou": iou},
            artefacts={
                "alpha": f"{rel}/alpha/{item.stem}.png",
                "web_cutout": f"{rel}/web/{item.stem}.cutout.png",
            },
        )


@dataclass
class World:
    version: DatasetVersion
    runs: list[EvalRun]
    researcher: Any
    annotators: list[Any]


def build_world(
    tmp_path: Path, *, n: int = 8, runs: int = 2, annotators: int = 3, name: str = "rate-set"
) -> World:
    version = tiny_set(tmp_path, name=name, n=n, empty=0)
    return world_of(version, fabricate_results, runs=runs, annotators=annotators, config="cfghash")


def world_of(
    version: DatasetVersion, fabricate: Callable[[EvalRun, int], None], *, runs: int,
    annotators: int, config: str,
) -> World:  # fmt: skip
    """Finished runs of subject-lift's versions on `version` (the first one `production`), each
    given its results by `fabricate(run, kind)`, a researcher and `annotators` annotators."""
    built = []
    for kind in range(runs):
        mv = version_row(MODEL_NAMES[0], VERSIONS[kind], fmt="torch_export", spec=tiny_spec())
        if kind == 0:
            Alias.objects.create(family=mv.family, name=PRODUCTION, version=mv)
        run = done_run_row(mv, version, f"{config}{kind:02d}deadbeef")
        fabricate(run, kind)
        built.append(run)
    return World(
        version=version,
        runs=built,
        researcher=user_with("researcher", "res"),
        annotators=[user_with("annotator", f"ann{i}") for i in range(annotators)],
    )


def open_campaign(world: World, **kw: Any) -> Campaign:
    """A campaign over the world's set and runs, open now, without gold unless `kw` (any of
    `campaign_create`'s arguments) asks for it."""
    args: dict[str, Any] = {
        "name": "c", "dataset_version": world.version, "runs": world.runs, "items_per_pair": 4,
        "gold_ratio": 0.0, "open_now": True, **kw,
    }  # fmt: skip
    return campaign_create(**args)
