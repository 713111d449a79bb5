"""The shipped demo candidates: their model cards tell the truth.

Recomputes each candidate's validation IoU on PASCAL-S 401–500 from the shipped `.pt2` through
the platform's own path (spec → runner → alpha → pipelines.metrics), independently of the training
code that wrote the card, and compares it with the card's `validation_iou:` line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pipelines.metrics.functional import binary_iou
from pipelines.runners import make_runner
from pipelines.spec import validate_spec

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "models"
PASCAL = ROOT.parent / "shared" / "data" / "pascal-s"
VERSIONS = ["1.0.0", "1.1.0"]
# The card thresholds the float alpha at 0.5; the platform scores the 8-bit PNG (>= 128), so a few
# boundary pixels may differ.
TOLERANCE = 0.005

pytestmark = pytest.mark.shared_data


def card_iou(version: str) -> float:
    card = (FIXTURES / f"subject-lift-{version}.card.md").read_text()
    match = re.search(r"^validation_iou: ([0-9.]+)$", card, re.M)
    assert match, "the card must carry a machine-readable validation_iou line"
    return float(match.group(1))


@pytest.mark.parametrize("version", VERSIONS)
def test_card_validation_iou_matches_the_shipped_file(version: str) -> None:
    pt2 = FIXTURES / f"subject-lift-{version}.pt2"
    spec = json.loads(Path(f"{pt2}.spec.json").read_text())
    validate_spec(spec)
    runner = make_runner(pt2, spec, "cpu", threads=2)
    ious = []
    for stem in range(401, 501):
        rgb = np.asarray(Image.open(PASCAL / "images" / f"{stem}.jpg").convert("RGB"))
        mask = np.asarray(Image.open(PASCAL / "masks" / f"{stem}.png").convert("L"))
        alpha = runner.predict(rgb).alpha
        up = cv2.resize(alpha, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR)
        ious.append(binary_iou(up, mask))
    assert abs(float(np.mean(ious)) - card_iou(version)) <= TOLERANCE


def test_the_better_candidate_is_clearly_better() -> None:
    assert card_iou("1.1.0") > card_iou("1.0.0") + 0.02
