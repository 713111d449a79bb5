"""pipelines.metrics' functional core against the references (metrics.md, conventions.md §4).

SOD family vs PySODMetrics 1.6 (tolerance 1e-6, weighted F 1e-4) on real PASCAL-S masks and on
synthetic predictions that exercise every path; IoU / precision / recall vs torchmetrics and
scikit-learn; boundary F on hand-checked squares; the aggregator vs PySODMetrics' dataset summary.
"""

from __future__ import annotations

import types
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from bench.support.pysod import SOD_KEYS, load_pysod
from pipelines.metrics import MetricAggregator, binary_boundary_f, evaluate_pair
from pipelines.metrics.functional import CURVE_KEYS, SCALAR_KEYS

PASCAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "pascal-s" / "masks"
# 10 masks, including the empty `359` and the < 1 % foreground `1`.
PASCAL_STEMS = ("1", "2", "3", "4", "10", "57", "120", "359", "401", "499")


@pytest.fixture(scope="module")
def pysod() -> types.ModuleType:
    return load_pysod()


def reference(sm: types.ModuleType, pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """PySODMetrics' dataset results over `pairs` (uint8 pred, uint8 0/255 GT)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = {"mae": sm.MAE(), "sm": sm.Smeasure(), "em": sm.Emeasure(), "fm": sm.Fmeasure()}
        m["wfm"] = sm.WeightedFmeasure()
        for pred, gt in pairs:
            for metric in m.values():
                metric.step(pred, gt)
        r = {k: v.get_results() for k, v in m.items()}
    fm, em = r["fm"]["fm"], r["em"]["em"]
    return {
        "mae": r["mae"]["mae"], "s_measure": r["sm"]["sm"], "weighted_f": r["wfm"]["wfm"],
        "max_f": fm["curve"].max(), "mean_f": fm["curve"].mean(), "adaptive_f": fm["adp"],
        "max_e": em["curve"].max(), "mean_e": em["curve"].mean(), "adaptive_e": em["adp"],
        "curves": {"precision": r["fm"]["pr"]["p"], "recall": r["fm"]["pr"]["r"],
                   "fmeasure": fm["curve"], "emeasure": em["curve"]},
    }  # fmt: skip


def assert_matches_pysod(ours: dict[str, Any], ref: dict[str, Any], context: str) -> None:
    for key in SOD_KEYS:
        assert ours[key] == pytest.approx(float(ref[key]), abs=1e-6), f"{context}: {key}"
    assert ours["weighted_f"] == pytest.approx(float(ref["weighted_f"]), abs=1e-4), context
    for key in CURVE_KEYS:
        np.testing.assert_allclose(ours["curves"][key], ref["curves"][key], atol=1e-6, rtol=0)


def graded_predictions(gt: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Predictions of varying quality derived from a 0/255 GT mask."""
    rng = np.random.default_rng(seed)
    blurred = cv2.GaussianBlur(gt, (0, 0), 4)
    shifted = cv2.GaussianBlur(np.roll(gt, (5, -9), (0, 1)), (0, 0), 2).astype(np.float64)
    noisy = np.clip(shifted * 0.7 + rng.normal(0, 25, gt.shape) + 30, 0, 255).astype(np.uint8)
    return {
        "blurred": blurred,
        "shifted_noisy": noisy,
        "not_full_range": (40 + blurred.astype(np.uint16) * 150 // 255).astype(np.uint8),
        "binary_shifted": np.roll(gt, 12, 1),
    }


# ---------------------------------------------------------------------------------------------
# SOD family vs PySODMetrics


@pytest.mark.shared_data
@pytest.mark.parametrize("stem", PASCAL_STEMS)
def test_sod_metrics_match_pysodmetrics_on_pascal_masks(pysod: types.ModuleType, stem: str) -> None:
    gt = cv2.imread(str(PASCAL / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
    for kind, pred in graded_predictions(gt, seed=int(stem)).items():
        ours = evaluate_pair(pred, gt)
        assert_matches_pysod(ours, reference(pysod, [(pred, gt)]), f"{stem}/{kind}")


def _synthetic_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    h, w = 96, 128
    gt = np.zeros((h, w), np.uint8)
    cv2.ellipse(gt, (70, 40), (30, 20), 15, 0, 360, 255, -1)
    graded = cv2.GaussianBlur((rng.random((h, w)) * 255).astype(np.uint8), (0, 0), 3)
    smooth = cv2.GaussianBlur(gt, (0, 0), 6)
    left_half = np.zeros((h, w), np.uint8)
    left_half[:, : w // 2] = 255
    # Levels {0, 0.5, 1} with mean 0.25: the adaptive threshold (0.5) lands on a level.
    tie = np.tile(np.array([254, 127, 127, 0, 0, 0, 0, 0], np.uint8), (h, w // 8))
    empty, full = np.zeros((h, w), np.uint8), np.full((h, w), 255, np.uint8)
    return {
        "graded": (graded, gt),
        "smooth": (smooth, gt),
        "not_full_range": ((60 + smooth.astype(np.uint16) * 100 // 255).astype(np.uint8), gt),
        "constant_128": (np.full((h, w), 128, np.uint8), gt),
        "constant_77_half_gt": (np.full((h, w), 77, np.uint8), left_half),
        "constant_0": (empty.copy(), gt),
        "constant_255": (full.copy(), gt),
        "exactly_128_and_0": (np.where(smooth > 100, 128, 0).astype(np.uint8), gt),
        "exactly_128_and_127": (np.where(gt > 0, 128, 127).astype(np.uint8), gt),
        "adaptive_threshold_tie": (tie, gt),
        "empty_gt": (smooth, empty),
        "empty_gt_empty_pred": (empty.copy(), empty),
        "full_gt": (smooth, full),
        "full_gt_full_pred": (full.copy(), full),
        "empty_prediction": (empty.copy(), gt),
        "tiny_2x2": (np.array([[0, 200], [30, 255]], np.uint8),
                     np.array([[255, 0], [0, 0]], np.uint8)),
        "single_fg_pixel": (smooth, np.pad(np.full((1, 1), 255, np.uint8), ((40, 55), (60, 67)))),
    }  # fmt: skip


@pytest.mark.parametrize("case", sorted(_synthetic_cases()))
def test_sod_metrics_match_pysodmetrics_on_edge_cases(pysod: types.ModuleType, case: str) -> None:
    pred, gt = _synthetic_cases()[case]
    assert_matches_pysod(evaluate_pair(pred, gt), reference(pysod, [(pred, gt)]), case)


def test_s_measure_is_finite_where_pysodmetrics_gives_nan(pysod: types.ModuleType) -> None:
    """Documented deviation: GT centroid on the last row → a zero-area quadrant → PySOD NaN."""
    gt = np.zeros((20, 30), np.uint8)
    gt[-1, 5:25] = 255
    pred = cv2.GaussianBlur(gt, (0, 0), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(reference(pysod, [(pred, gt)])["s_measure"])
    assert 0 <= evaluate_pair(pred, gt)["s_measure"] <= 1


def test_aggregator_summary_matches_pysodmetrics_dataset_results(pysod: types.ModuleType) -> None:
    cases = _synthetic_cases()
    pairs = [cases[k] for k in ("graded", "smooth", "constant_128", "empty_gt", "full_gt")]
    agg = MetricAggregator()
    rows = [agg.update(pred, gt, name=f"img{i}") for i, (pred, gt) in enumerate(pairs)]
    out = agg.compute()
    ref = reference(pysod, pairs)
    for key in (*SOD_KEYS, "weighted_f"):
        assert out["summary"][key] == pytest.approx(float(ref[key]), abs=1e-6), key
    for key in CURVE_KEYS:
        np.testing.assert_allclose(out["curves"][key], ref["curves"][key], atol=1e-6, rtol=0)
    # Per image rows carry the per-image curve max / mean; the summary is the mean curve's.
    assert [r["name"] for r in out["per_image"]] == [f"img{i}" for i in range(5)]
    assert out["per_image"] == rows
    assert out["summary"]["iou"] == pytest.approx(np.mean([r["iou"] for r in rows]))
    assert out["summary"]["max_f"] <= np.mean([r["max_f"] for r in rows]) + 1e-12
    assert set(out["summary"]) == set(SCALAR_KEYS)


def test_aggregator_rejects_duplicate_names_and_summarises_nothing_as_none() -> None:
    agg = MetricAggregator()
    assert all(v is None for v in agg.compute()["summary"].values())
    gt = np.zeros((8, 8), np.uint8)
    agg.update(gt, gt, name="a")
    with pytest.raises(ValueError, match="already"):
        agg.update(gt, gt, name="a")


# ---------------------------------------------------------------------------------------------
# Thresholded metrics vs torchmetrics / scikit-learn


def _torchmetrics(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float, float]:
    import torch
    from torchmetrics.classification import BinaryJaccardIndex, BinaryPrecision, BinaryRecall

    p = torch.from_numpy(pred.astype(np.float32) / 255)
    g = torch.from_numpy((gt > 127).astype(np.int64))
    metrics = (BinaryJaccardIndex(threshold=0.5), BinaryPrecision(threshold=0.5),
               BinaryRecall(threshold=0.5))  # fmt: skip
    return tuple(float(m(p, g)) for m in metrics)  # type: ignore[return-value]


def _threshold_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    cases = _synthetic_cases()
    keep = ("graded", "smooth", "constant_128", "exactly_128_and_127", "empty_gt", "full_gt",
            "empty_prediction", "not_full_range")  # fmt: skip
    return {k: cases[k] for k in keep}


@pytest.mark.parametrize("case", sorted(_threshold_cases()))
def test_iou_precision_recall_match_torchmetrics(case: str) -> None:
    pred, gt = _threshold_cases()[case]
    ours = evaluate_pair(pred, gt)
    expected = _torchmetrics(pred, gt)
    assert (ours["iou"], ours["precision"], ours["recall"]) == pytest.approx(expected, abs=1e-6)


@pytest.mark.shared_data
def test_iou_precision_recall_match_sklearn_on_pascal_masks() -> None:
    from sklearn.metrics import jaccard_score, precision_score, recall_score

    for stem in PASCAL_STEMS[:6]:
        gt = cv2.imread(str(PASCAL / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
        pred = graded_predictions(gt, seed=1)["shifted_noisy"]
        y, p = (gt > 127).ravel(), (pred.astype(np.float64) / 255 > 0.5).ravel()
        ours = evaluate_pair(pred, gt)
        assert ours["iou"] == pytest.approx(jaccard_score(y, p, zero_division=0), abs=1e-12)
        assert ours["precision"] == pytest.approx(precision_score(y, p, zero_division=0))
        assert ours["recall"] == pytest.approx(recall_score(y, p, zero_division=0), abs=1e-12)


def test_both_empty_scores_one_where_torchmetrics_scores_zero() -> None:
    empty = np.zeros((16, 16), np.uint8)
    ours = evaluate_pair(empty, empty)
    assert (ours["iou"], ours["precision"], ours["recall"]) == (1.0, 1.0, 1.0)
    assert _torchmetrics(empty, empty) == (0.0, 0.0, 0.0)  # the one documented difference
    assert ours["boundary_f"] == 1.0


def test_128_is_foreground_and_127_is_not_at_threshold_half() -> None:
    gt = np.zeros((4, 4), np.uint8)
    gt[:2] = 255
    pred = np.where(gt > 0, 128, 127).astype(np.uint8)
    assert evaluate_pair(pred, gt)["iou"] == 1.0
    assert evaluate_pair(pred, gt, threshold=128 / 255)["iou"] == 0.0


def test_float_alpha_is_quantised_to_8_bits_half_up() -> None:
    rng = np.random.default_rng(3)
    alpha = cv2.GaussianBlur(rng.random((40, 50)), (0, 0), 2)
    alpha = (alpha - alpha.min()) / (alpha.max() - alpha.min())
    gt = (alpha > 0.45).astype(bool)
    as_uint8 = np.floor(alpha * 255 + 0.5).astype(np.uint8)
    ours_float, ours_uint8 = evaluate_pair(alpha, gt), evaluate_pair(as_uint8, gt)
    assert {k: ours_float[k] for k in SCALAR_KEYS} == {k: ours_uint8[k] for k in SCALAR_KEYS}
    half = np.full((2, 2), 0.5)
    assert evaluate_pair(half, np.ones((2, 2), bool))["precision"] == 1.0  # 0.5 → 128 → foreground


def test_bad_inputs_are_rejected_with_a_reason() -> None:
    gt = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        evaluate_pair(np.zeros((4, 5), np.uint8), gt)
    with pytest.raises(ValueError, match="0/1"):
        evaluate_pair(gt, np.eye(4, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluate_pair(np.full((4, 4), 1.5), gt)
    with pytest.raises(ValueError, match="threshold"):
        evaluate_pair(gt, gt, threshold=1.5)


# ---------------------------------------------------------------------------------------------
# Boundary F (hand-checked)


def _square(shift: int) -> np.ndarray:
    mask = np.zeros((400, 400), np.uint8)
    mask[100:200, 100 + shift : 200 + shift] = 255
    return mask


@pytest.mark.parametrize("shift", [0, 3, 5])
def test_boundary_f_is_one_within_tolerance(shift: int) -> None:
    # 400×400: tolerance = ceil(0.0075 × 565.7) = 5 px, inclusive.
    assert binary_boundary_f(_square(shift), _square(0)) == 1.0


def test_boundary_f_drops_beyond_tolerance() -> None:
    assert binary_boundary_f(_square(6), _square(0)) < 1.0
    # Shift 20: of 396 boundary pixels, 85 + 85 on the top/bottom edges and 10 at the corners of
    # the near side are within 5 px of the other square's boundary, both ways: F = 180 / 396.
    assert binary_boundary_f(_square(20), _square(0)) == pytest.approx(180 / 396)
    assert binary_boundary_f(_square(150), _square(0)) == 0.0


def test_boundary_f_degenerate_cases() -> None:
    empty, full = np.zeros((50, 60), np.uint8), np.full((50, 60), 255, np.uint8)
    assert binary_boundary_f(empty, empty) == 1.0
    assert binary_boundary_f(full, full) == 1.0  # the image frame is the boundary of both
    assert binary_boundary_f(empty, full) == 0.0
    assert binary_boundary_f(full, empty) == 0.0
