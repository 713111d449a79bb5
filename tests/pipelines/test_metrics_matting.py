"""Cutout-quality metrics (sad, mse_alpha, grad, conn, boundary_iou) against their references.

References (transcribed literally in `tests/pipelines/matting_reference.py`): mmagic's matting
metrics (`mmagic/evaluation/metrics/{sad,matting_mse,gradient_error,connectivity_error}.py`,
`mmagic/evaluation/functional/gaussian_funcs.py`) and boundary-iou-api's `mask_to_boundary`
(`boundary_iou/utils/boundary_utils.py`). Inputs: real photos of the demo set with the shipped
model's own predictions, derived graded predictions, and the degenerate cases (empty and full
masks, constant, exact and inverted predictions, one pixel, masks touching the border).
Tolerances: 1e-9 relative for sad, mse_alpha, conn and boundary_iou (exact arithmetic up to
summation order); 1e-6 relative for grad, which filters in float32 (documented in `matting.py`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.metrics import SCALAR_KEYS, MetricAggregator, evaluate_pair
from pipelines.metrics.functional import (
    binary_boundary_iou,
    connectivity_error,
    gradient_error,
    mse_alpha,
    sad,
)
from pipelines.metrics.matting import boundary_erosion, boundary_region
from tests.pipelines import matting_reference as ref

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "fixtures" / "sets" / "pascal-s-demo"
MODEL = ROOT / "fixtures" / "models" / "subject-lift-1.0.0.pt2"
STEMS = ("401", "405", "409", "413", "417", "421")
NEW_KEYS = ("sad", "mse_alpha", "grad", "conn", "boundary_iou")


def reference(pred: np.ndarray, gt01: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    gt255 = gt01.astype(np.uint8) * 255
    pred_bin = (pred > int(threshold * 255)).astype(np.uint8)
    return {
        "sad": ref.sad(pred, gt255),
        "mse_alpha": ref.mse(pred, gt255),
        "grad": ref.gradient_error(pred, gt255),
        "conn": ref.connectivity_error(pred, gt255),
        "boundary_iou": ref.boundary_iou(gt01.astype(np.uint8), pred_bin),
    }


def assert_matches(ours: dict[str, float], theirs: dict[str, float], context: str) -> None:
    for key in NEW_KEYS:
        rel = 1e-6 if key == "grad" else 1e-9
        assert ours[key] == pytest.approx(theirs[key], rel=rel, abs=1e-9), f"{context}: {key}"


@pytest.fixture(scope="module")
def model_predictions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """The shipped subject-lift 1.0.0's alpha for a few demo photos (`python -m
    pipelines.predict`, as a user runs it)."""
    root = tmp_path_factory.mktemp("predict")
    images, out = root / "images", root / "out"
    images.mkdir()
    for stem in STEMS:
        (images / f"{stem}.jpg").write_bytes((DEMO / "images" / f"{stem}.jpg").read_bytes())
    cmd = [sys.executable, "-m", "pipelines.predict", "--model", str(MODEL), "--images"]
    proc = subprocess.run(
        [*cmd, str(images), "--out", str(out), "--json", str(root / "r.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return {s: cv2.imread(str(out / f"{s}.png"), cv2.IMREAD_GRAYSCALE) for s in STEMS}


def gt_mask(stem: str) -> np.ndarray:
    return cv2.imread(str(DEMO / "masks" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE) > 127


@pytest.mark.parametrize("stem", STEMS)
def test_model_predictions_match_the_references(
    model_predictions: dict[str, np.ndarray], stem: str
) -> None:
    pred, gt = model_predictions[stem], gt_mask(stem)
    assert pred.shape == gt.shape and 0 < gt.mean() < 1
    assert_matches(evaluate_pair(pred, gt), reference(pred, gt), f"model on {stem}")


def graded(gt: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    g = gt.astype(np.uint8) * 255
    shifted = cv2.GaussianBlur(np.roll(g, (5, -9), (0, 1)), (0, 0), 2).astype(np.float64)
    return {
        "blurred": cv2.GaussianBlur(g, (0, 0), 4),
        "noisy": np.clip(shifted * 0.7 + rng.normal(0, 25, g.shape) + 30, 0, 255).astype(np.uint8),
        # Speckled: many components at every threshold (the connectivity error's slow path).
        "speckled": np.where(rng.random(g.shape) < 0.3, 255 - g, g).astype(np.uint8),
        "not_full_range": (
            40 + cv2.GaussianBlur(g, (0, 0), 3).astype(np.uint16) * 150 // 255
        ).astype(np.uint8),
    }


@pytest.mark.parametrize("stem", STEMS[:3])
def test_graded_predictions_match_the_references(stem: str) -> None:
    gt = gt_mask(stem)
    for name, pred in graded(gt, int(stem)).items():
        assert_matches(evaluate_pair(pred, gt), reference(pred, gt), f"{name} on {stem}")


def two_subjects() -> np.ndarray:
    gt = np.zeros((120, 160), bool)
    gt[20:100, 10:70] = True  # larger
    gt[30:90, 90:150] = True
    return gt


DEGENERATE = {
    "empty_gt_empty_pred": (np.zeros((50, 60), np.uint8), np.zeros((50, 60), bool)),
    "empty_gt_some_pred": (np.full((50, 60), 90, np.uint8), np.zeros((50, 60), bool)),
    "full_gt_full_pred": (np.full((50, 60), 255, np.uint8), np.ones((50, 60), bool)),
    "full_gt_graded": (
        np.tile(np.linspace(0, 255, 60).astype(np.uint8), (50, 1)),
        np.ones((50, 60), bool),
    ),
    "exact": (two_subjects().astype(np.uint8) * 255, two_subjects()),
    "inverted": ((~two_subjects()).astype(np.uint8) * 255, two_subjects()),
    "constant_128": (np.full((120, 160), 128, np.uint8), two_subjects()),
    "single_pixel": (np.zeros((1, 1), np.uint8), np.ones((1, 1), bool)),
    "one_fg_pixel": (np.pad(np.full((1, 1), 200, np.uint8), 7), np.pad(np.ones((1, 1), bool), 7)),
    "touches_border": (
        np.pad(np.full((30, 40), 230, np.uint8), ((0, 10), (0, 0))),
        np.pad(np.ones((30, 40), bool), ((0, 10), (0, 0))),
    ),
    # Two subjects, the prediction drops the larger one: the largest component flips.
    "largest_component_elsewhere": (
        np.where(np.arange(160)[None, :] > 80, two_subjects() * 255, 0).astype(np.uint8),
        two_subjects(),
    ),
}


@pytest.mark.parametrize("case", sorted(DEGENERATE))
def test_degenerate_cases_match_the_references(case: str) -> None:
    pred, gt = DEGENERATE[case]
    assert_matches(evaluate_pair(pred, gt), reference(pred, gt), case)


def test_degenerate_values_are_the_documented_ones() -> None:
    empty = evaluate_pair(*DEGENERATE["empty_gt_empty_pred"])
    assert empty["boundary_iou"] == 1.0  # both boundaries empty: a correct "no subject"
    assert empty["sad"] == empty["mse_alpha"] == empty["grad"] == empty["conn"] == 0.0
    exact = evaluate_pair(*DEGENERATE["exact"])
    assert exact["boundary_iou"] == 1.0 and exact["sad"] == exact["conn"] == 0.0
    assert exact["grad"] == pytest.approx(0.0, abs=1e-9)
    missing = evaluate_pair(np.zeros((50, 60), np.uint8), np.ones((50, 60), bool))
    assert missing["boundary_iou"] == 0.0 and missing["sad"] == pytest.approx(3.0)  # 3000 px
    assert missing["mse_alpha"] == 1.0


def test_boundary_region_equals_mask_to_boundary_and_uses_two_percent_of_the_diagonal() -> None:
    assert boundary_erosion((300, 400)) == 10  # 0.02 × 500
    assert boundary_erosion((10, 10)) == 1  # round(0.28) = 0, at least 1
    assert boundary_erosion((3024, 4032)) == 101
    rng = np.random.default_rng(5)
    for _ in range(5):
        mask = cv2.GaussianBlur(rng.random((90, 130)), (0, 0), 6) > 0.5
        np.testing.assert_array_equal(boundary_region(mask), ref.mask_to_boundary(mask))


def test_functional_wrappers_equal_evaluate_pair() -> None:
    gt = gt_mask(STEMS[0])
    pred = graded(gt, 1)["noisy"]
    row = evaluate_pair(pred, gt)
    assert sad(pred, gt) == row["sad"] and mse_alpha(pred, gt) == row["mse_alpha"]
    assert gradient_error(pred, gt) == row["grad"] and connectivity_error(pred, gt) == row["conn"]
    assert binary_boundary_iou(pred, gt) == row["boundary_iou"]


def test_the_summary_is_the_mean_over_images_never_pooled_pixels() -> None:
    """A small image and a large one: the mean of per-image values, not a pixel-weighted one."""
    small_gt, large_gt = np.zeros((20, 20), bool), np.zeros((200, 200), bool)
    small_gt[5:15, 5:15] = True
    large_gt[50:150, 50:150] = True
    small_pred = np.zeros((20, 20), np.uint8)  # misses everything
    large_pred = large_gt.astype(np.uint8) * 255  # exact
    agg = MetricAggregator()
    rows = [agg.update(small_pred, small_gt, "small"), agg.update(large_pred, large_gt, "large")]
    summary = agg.compute()["summary"]
    for key in NEW_KEYS:
        assert summary[key] == pytest.approx(np.mean([r[key] for r in rows]))
    assert summary["boundary_iou"] == pytest.approx(0.5)
    assert set(NEW_KEYS) <= set(SCALAR_KEYS)
