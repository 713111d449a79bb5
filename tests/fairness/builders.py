"""A fairness test world built from rows: a set of n items (one shared tiny photo/mask on disk, so
pages can show thumbnails), an attribute revision with Monk tones and genders cycling, and finished
runs whose per-image metrics are drawn at random, degraded on Monk 8-10 when asked. Building 300
items this way takes well under a second (importing pictures would take a minute).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from PIL import Image

from evalsite.datasets.models import (
    AttributeRevision,
    Dataset,
    DatasetVersion,
    Item,
    ItemAttribute,
)
from evalsite.evals.models import EvalRun, ItemResult
from tests.evals.factories import done_run_row, tiny_spec, user_with, version_row

GENDERS = ("woman", "man", "woman", "man", "other")
_COUNTER = itertools.count(1)
#: Every per-item file a run writes, pointed at the shared tiny files (pages show real images).
ARTEFACTS = {
    "alpha": "runs/fx/mask.png",
    "alpha_ungated": "runs/fx/mask.png",
    "cutout": "runs/fx/photo.jpg",
    "web_cutout": "runs/fx/photo.jpg",
    "web_overlay": "runs/fx/photo.jpg",
    "web_alpha": "runs/fx/mask.png",
}


@dataclass
class FairnessWorld:
    version: DatasetVersion
    items: list[Item]
    runs: list[EvalRun]
    researcher: Any
    revision: AttributeRevision | None


def _files() -> dict[str, str]:
    root = Path(settings.MEDIA_ROOT) / "fx"
    root.mkdir(parents=True, exist_ok=True)
    photo = np.full((48, 48, 3), 120, np.uint8)
    photo[12:36, 12:36] = (200, 150, 120)
    Image.fromarray(photo).save(root / "photo.jpg")
    mask = np.zeros((48, 48), np.uint8)
    mask[12:36, 12:36] = 255
    Image.fromarray(mask).save(root / "mask.png")
    runs = Path(settings.MEDIA_ROOT) / "runs" / "fx"  # run artefacts must live under runs/
    runs.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo).save(runs / "photo.jpg")
    Image.fromarray(mask).save(runs / "mask.png")
    return {
        "image": "fx/photo.jpg",
        "mask": "fx/mask.png",
        "web": "fx/photo.jpg",
        "web_overlay": "fx/photo.jpg",
        "thumb": "fx/photo.jpg",
        "thumb_overlay": "fx/photo.jpg",
    }


def build_set(
    name: str = "",
    n: int = 300,
    negatives: int = 6,
    attributes: bool = True,
    source: str = "manifest",
) -> tuple[DatasetVersion, list[Item]]:
    files = _files()
    name = name or f"people-{next(_COUNTER)}"
    dataset = Dataset.objects.create(name=name)
    version = DatasetVersion.objects.create(
        dataset=dataset,
        content_hash=hashlib.sha256(name.encode()).hexdigest(),
        item_count=n + negatives,
        no_subject_count=negatives,
    )
    items = Item.objects.bulk_create(
        [
            Item(
                version=version,
                stem=f"img_{i:04d}",
                image_sha256=f"{i:064d}",
                mask_sha256="0",
                width=48,
                height=48,
                fg_fraction=0.0 if i >= n else 0.25,
                size_bucket="none" if i >= n else "medium",
                metadata={"contrast": f"{10 + (i % 10) * 2 + (i % 7):.2f}"},
                **files,
            )
            for i in range(n + negatives)
        ]
    )
    if attributes:
        revision = AttributeRevision.objects.create(version=version, number=1, source=source)
        ItemAttribute.objects.bulk_create(
            [
                ItemAttribute(
                    revision=revision,
                    item=item,
                    skin_tone="not_applicable" if i >= n else str(i % 10 + 1),
                    perceived_gender="not_applicable" if i >= n else GENDERS[(i // 10) % 5],
                    source=source,
                )
                for i, item in enumerate(items)
            ]
        )
    return version, list(items)


def add_run(
    version: DatasetVersion,
    items: list[Item],
    *,
    model: str = "",
    degrade: float = 0.0,
    seed: int = 0,
    gated_dark: float = 0.0,
) -> EvalRun:
    model = model or f"1.0.{next(_COUNTER)}"
    mv = version_row("subject-lift", model, fmt="torch_export", spec=tiny_spec())
    run = done_run_row(mv, version, f"cfg-{model}-{seed}")
    rng = np.random.default_rng(seed)
    rows = []
    for i, item in enumerate(items):
        dark = (i % 10) + 1 >= 8 and item.size_bucket != "none"
        q = float(np.clip(rng.normal(0.8, 0.08) - (degrade if dark else 0.0), 0, 1))
        gated = bool(rng.random() < (0.03 + (gated_dark if dark else 0.0)))
        rows.append(
            ItemResult(
                run=run,
                item=item,
                status="ok",
                iou=q,
                precision=min(1.0, q + 0.05),
                recall=min(1.0, q + 0.03),
                boundary_f=max(0.0, q - 0.2),
                mae=(1 - q) * 0.1,
                gated=gated,
                metrics={"iou": q},
                artefacts=ARTEFACTS,
            )
        )
    ItemResult.objects.bulk_create(rows)
    return run


def build_world(
    *, degrade: float = 0.2, attributes: bool = True, n: int = 300, source: str = "manifest"
) -> FairnessWorld:
    version, items = build_set(n=n, attributes=attributes, source=source)
    run = add_run(version, items, degrade=degrade)
    return FairnessWorld(
        version, items, [run], user_with("researcher", "res"), version.attribute_revisions.first()
    )
