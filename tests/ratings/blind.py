"""What an annotator must never see: model identity, run ids, file names, metrics, ground truth."""

from __future__ import annotations

import re

from tests.ratings.builders import World

GENERIC = (
    "subject-lift",
    "production",
    "run #",
    "/runs/",
    "run_a",
    "run_b",
    "iou",
    "IoU",
    "torch_export",
    "alpha",
    "mask",
    "metric",
    "gold",
    ".png",
    ".jpg",
)


def forbidden(world: World) -> list[str]:
    words = list(GENERIC)
    for run in world.runs:
        words.append(run.model_version.version)
        words.append(run.config_hash)
    words += [item.stem for item in world.version.items.all()]
    words.append(world.version.dataset.name)
    return words


def leaks(text: str, words: list[str]) -> list[str]:
    """Words found as whole tokens (so "iou" in "obvious" or a stem inside a hash is no leak)."""
    return [w for w in words if re.search(rf"(?<![A-Za-z0-9]){re.escape(w)}(?![A-Za-z0-9])", text)]
