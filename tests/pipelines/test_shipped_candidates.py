"""The shipped demo candidates: their model cards tell the truth.

Recomputes each candidate's validation numbers on PASCAL-S 401–500 from the shipped `.pt2` through
the platform's own path (spec → runner → alpha/confidence → gate → pipelines.metrics), independently
of the training code that wrote the card, and compares them with the card's machine-readable lines:
`validation_iou:` (no gate) for every candidate and, for candidates trained with a picked gate
threshold (1.2.0 on), `gate_threshold:`, `gated_no_subject:`, `gated_subject:` and
`validation_iou_gated:` (gated items scored as the platform scores them: an all-zero alpha).
1.0.0 and 1.1.0 predate the gate (spec default 0.5, no gating lines on their cards).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pipelines.metrics.functional import binary_iou
from pipelines.postprocess.gate import apply_gate, decide, resolve_threshold
from pipelines.runners import make_runner
from pipelines.spec import validate_spec

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "models"
PASCAL = ROOT.parent / "shared" / "data" / "pascal-s"
VERSIONS = ["1.0.0", "1.1.0", "1.2.0"]
GATED_VERSIONS = ["1.2.0"]
# The card thresholds the float alpha at 0.5; the platform scores the 8-bit PNG (>= 128), so a few
# boundary pixels may differ.
TOLERANCE = 0.005

pytestmark = pytest.mark.shared_data


def card_value(version: str, key: str = "validation_iou") -> float:
    card = (FIXTURES / f"subject-lift-{version}.card.md").read_text()
    match = re.search(rf"^{key}: ([0-9.]+)$", card, re.M)
    assert match, f"the {version} card must carry a machine-readable {key} line"
    return float(match.group(1))


def card_iou(version: str) -> float:
    return card_value(version, "validation_iou")


@cache
def platform_scores(version: str) -> dict[str, float]:
    """Ungated/gated mean IoU and gating rates of the shipped file, the platform's way."""
    pt2 = FIXTURES / f"subject-lift-{version}.pt2"
    spec = json.loads(Path(f"{pt2}.spec.json").read_text())
    validate_spec(spec)
    threshold = resolve_threshold(spec.get("gate_threshold"))
    runner = make_runner(pt2, spec, "cpu", threads=2)
    ious, ious_gated, gated_subject, gated_empty = [], [], [], []
    for stem in range(401, 501):
        rgb = np.asarray(Image.open(PASCAL / "images" / f"{stem}.jpg").convert("RGB"))
        mask = np.asarray(Image.open(PASCAL / "masks" / f"{stem}.png").convert("L"))
        raw = runner.predict(rgb)
        up = cv2.resize(raw.alpha, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR)
        decision = decide(raw.confidence, threshold)
        ious.append(binary_iou(up, mask))
        ious_gated.append(binary_iou(apply_gate(up, decision), mask))
        (gated_subject if (mask > 127).any() else gated_empty).append(decision.gated)
    assert gated_empty, "PASCAL-S 401–500 holds no-subject items (408, 424, 460)"
    return {
        "threshold": threshold,
        "validation_iou": float(np.mean(ious)),
        "validation_iou_gated": float(np.mean(ious_gated)),
        "gated_subject": float(np.mean(gated_subject)),
        "gated_no_subject": float(np.mean(gated_empty)),
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_card_validation_iou_matches_the_shipped_file(version: str) -> None:
    assert abs(platform_scores(version)["validation_iou"] - card_iou(version)) <= TOLERANCE


@pytest.mark.parametrize("version", GATED_VERSIONS)
def test_card_gating_numbers_match_the_shipped_file(version: str) -> None:
    scores = platform_scores(version)
    assert scores["threshold"] == pytest.approx(card_value(version, "gate_threshold"), abs=1e-4)
    for key in ("gated_no_subject", "gated_subject", "validation_iou_gated"):
        assert abs(scores[key] - card_value(version, key)) <= TOLERANCE, key


def test_the_better_candidate_is_clearly_better() -> None:
    assert card_iou("1.1.0") > card_iou("1.0.0") + 0.02


def test_the_gated_candidate_beats_its_parent_and_gates_no_subject_items() -> None:
    assert card_iou("1.2.0") > card_iou("1.1.0")
    assert card_value("1.2.0", "gated_no_subject") > 0
    assert card_value("1.2.0", "gated_subject") <= 0.03
