"""Functional core of the metrics: small pure functions on (prediction, ground truth) arrays.

Conventions (docs/contracts/metrics.md; repeated here because users argue about them):

* Prediction: 2-D uint8 (0–255), value v means v / 255. Float alpha in [0, 1] is first quantised
  to 8 bits, v = floor(255 · alpha + 0.5) (round half up), exactly as if it had been saved as an
  8-bit PNG; every metric then sees the same numbers as the command would. bool counts as 0/255.
* Ground truth: foreground = value > 127 for uint8 (float in [0, 1]: quantised as above first,
  i.e. alpha >= 0.5); bool is taken as is. An integer GT holding only 0 and 1 is rejected: under
  the > 127 rule it would silently be empty (pass it as bool).
* Thresholded metrics (IoU, precision, recall, boundary F): binary prediction = v / 255 > t
  (t = 0.5: 128 and above), as torchmetrics' binary metrics with `threshold=0.5`.
* SOD family: exactly PySODMetrics 1.6 (see `sod.py`); curves have 256 entries in PySODMetrics'
  order (index k ↔ 8-bit threshold 255 − k).
* Cutout quality on the alpha itself (see `matting.py`): sad, mse_alpha (no threshold), grad and
  conn (as mmagic computes them), boundary_iou (thresholded at t, Boundary IoU with d = 2 % of
  the diagonal).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.masks import gt_foreground

from . import matting, sod, spatial
from .histograms import PairStats, pair_stats

SCALAR_KEYS = (
    "iou", "precision", "recall", "boundary_f", "mae", "s_measure", "max_f", "mean_f",
    "adaptive_f", "max_e", "mean_e", "adaptive_e", "weighted_f",
    "sad", "mse_alpha", "grad", "conn", "boundary_iou",
)  # fmt: skip
CURVE_KEYS = ("precision", "recall", "fmeasure", "emeasure")


def as_pred_uint8(pred: np.ndarray) -> np.ndarray:
    """Prediction as a 2-D uint8 array (see the module docstring for the float rule)."""
    pred = np.asarray(pred)
    if pred.ndim != 2:
        raise ValueError(f"prediction must be 2-D (H, W), got shape {pred.shape}")
    if pred.dtype == np.uint8:
        return np.ascontiguousarray(pred)
    if pred.dtype == np.bool_:
        return pred.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(pred.dtype, np.floating):
        if pred.size and not (np.isfinite(pred).all() and pred.min() >= 0 and pred.max() <= 1):
            raise ValueError("float prediction must be finite and within [0, 1]")
        return np.floor(pred.astype(np.float64) * 255 + 0.5).astype(np.uint8)
    if np.issubdtype(pred.dtype, np.integer):
        if pred.size and (pred.min() < 0 or pred.max() > 255):
            raise ValueError(
                f"integer prediction must be within 0..255, got {pred.dtype} "
                f"{pred.min()}..{pred.max()}; scale 16-bit maps with round(v / 257)"
            )
        return pred.astype(np.uint8)
    raise ValueError(f"unsupported prediction dtype {pred.dtype}")


def as_gt_mask(gt: np.ndarray) -> np.ndarray:
    """Ground truth as a 2-D uint8 0/1 foreground mask (> 127 on the 8-bit scale)."""
    gt = np.asarray(gt)
    if gt.dtype == np.bool_:
        if gt.ndim != 2:
            raise ValueError(f"ground truth must be 2-D (H, W), got shape {gt.shape}")
        return gt.astype(np.uint8)
    gt8 = as_pred_uint8(gt)
    if np.issubdtype(gt.dtype, np.integer) and gt8.max(initial=0) == 1:
        # A 0/1 integer mask would silently become empty under the > 127 rule.
        raise ValueError("integer ground truth holds only 0/1: pass it as bool or as 0/255")
    return gt_foreground(gt8).astype(np.uint8)


def _prepare(pred: np.ndarray, gt: np.ndarray) -> PairStats:
    p, g = as_pred_uint8(pred), as_gt_mask(gt)
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {p.shape} differs from ground truth {g.shape}")
    if p.size == 0:
        raise ValueError("empty image")
    return pair_stats(p, g)


def _check_threshold(threshold: float) -> float:
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be within [0, 1], got {threshold}")
    return float(threshold)


def binarise(pred: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """uint8 0/1 mask of v / 255 > threshold (t = 0.5 → 128 and above)."""
    p = as_pred_uint8(pred)
    return (p > _last_background_value(_check_threshold(threshold))).astype(np.uint8)


def _last_background_value(threshold: float) -> int:
    """Largest 8-bit v with v / 255 <= threshold (−1 when none)."""
    background = np.flatnonzero(np.arange(256) / 255 <= threshold)
    return int(background[-1]) if background.size else -1


def _confusion(s: PairStats, threshold: float) -> tuple[int, int, int]:
    """(true positives, predicted positives, GT positives) of v / 255 > threshold."""
    first_fg = _last_background_value(_check_threshold(threshold)) + 1
    tp = int(s.fg_hist[first_fg:].sum())
    return tp, int(s.all_hist[first_fg:].sum()), s.n_fg


def _ratio(num: int, den: int, both_empty: bool) -> float:
    if both_empty:
        return 1.0
    return num / den if den else 0.0


def _iou_precision_recall(tp: int, pp: int, gp: int) -> tuple[float, float, float]:
    both_empty = pp == 0 and gp == 0
    union = pp + gp - tp
    return (
        _ratio(tp, union, both_empty),
        _ratio(tp, pp, both_empty),
        _ratio(tp, gp, both_empty),
    )


def binary_iou(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float:
    """|P ∩ G| / |P ∪ G| of the thresholded prediction. Both empty → 1.0 (torchmetrics: 0)."""
    return _iou_precision_recall(*_confusion(_prepare(pred, gt), threshold))[0]


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """|A ∩ B| / |A ∪ B| of two boolean masks of one shape (already binarised: instances, two
    runs' outputs, a model's mask against the truth). Both empty → 1.0, as `binary_iou`."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} and {b.shape}")
    union = int(np.count_nonzero(a | b))
    return 1.0 if union == 0 else int(np.count_nonzero(a & b)) / union


def binary_precision(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float:
    """|P ∩ G| / |P|. Both empty → 1.0; empty prediction with non-empty GT → 0."""
    return _iou_precision_recall(*_confusion(_prepare(pred, gt), threshold))[1]


def binary_recall(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float:
    """|P ∩ G| / |G|. Both empty → 1.0; empty GT with non-empty prediction → 0."""
    return _iou_precision_recall(*_confusion(_prepare(pred, gt), threshold))[2]


def binary_boundary_f(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float:
    """Boundary F1 of the thresholded prediction (see `spatial.boundary_f`)."""
    s = _prepare(pred, gt)
    return spatial.boundary_f(binarise(s.pred, threshold), s.gt)


def mae(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean |p − GT| with p the min–max-normalised prediction (PySODMetrics `MAE`)."""
    return sod.mae(_prepare(pred, gt))


def s_measure(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.5) -> float:
    """Structure measure (PySODMetrics `Smeasure`; see `sod.s_measure` for degenerate cases)."""
    return sod.s_measure(_prepare(pred, gt), alpha)


def e_measure_curve(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """E-measure at 256 thresholds (PySODMetrics `Emeasure` changeable curve)."""
    return sod.e_measure_curve(_prepare(pred, gt))


def adaptive_e_measure(pred: np.ndarray, gt: np.ndarray) -> float:
    """E-measure at the adaptive threshold min(2 × mean p, 1)."""
    return sod.adaptive_e_measure(_prepare(pred, gt))


def f_measure_curves(
    pred: np.ndarray, gt: np.ndarray, beta2: float = 0.3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, F) at 256 thresholds (PySODMetrics `Fmeasure.cal_pr`)."""
    return sod.f_measure_curves(_prepare(pred, gt), beta2)


def adaptive_f_measure(pred: np.ndarray, gt: np.ndarray, beta2: float = 0.3) -> float:
    """F-measure at the adaptive threshold min(2 × mean p, 1); 0 when it finds no GT pixel."""
    return sod.adaptive_f_measure(_prepare(pred, gt), beta2)


def weighted_f_measure(pred: np.ndarray, gt: np.ndarray, beta: float = 1.0) -> float:
    """Weighted F-measure (PySODMetrics `WeightedFmeasure`, β = 1); empty GT → 0."""
    return spatial.weighted_f_measure(_prepare(pred, gt), beta)


def sad(pred: np.ndarray, gt: np.ndarray) -> float:
    """Σ|alpha − GT| / 1000 over the image (alpha = v / 255, no normalisation)."""
    return matting.sad_mse(_prepare(pred, gt))[0]


def mse_alpha(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean (alpha − GT)² over the image (alpha = v / 255, no normalisation)."""
    return matting.sad_mse(_prepare(pred, gt))[1]


def gradient_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Alpha-matting gradient error / 1000 (mmagic, σ = 1.4; see `matting.gradient_error`)."""
    return matting.gradient_error(_prepare(pred, gt))


def connectivity_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Alpha-matting connectivity error / 1000 (mmagic, step 0.1; `matting.connectivity_error`)."""
    return matting.connectivity_error(_prepare(pred, gt))


def binary_boundary_iou(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float:
    """Boundary IoU of the thresholded prediction (d = max(1, round(0.02 × diagonal)) erosions of
    a 3×3 square, mask padded by one background pixel). Both boundaries empty → 1."""
    s = _prepare(pred, gt)
    return matting.boundary_iou(binarise(s.pred, threshold), s.gt)


def evaluate_pair(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Every metric of one pair: the 18 scalar keys of metrics.md plus `curves`.

    Scalars: iou, precision, recall, boundary_f, boundary_iou (thresholded at `threshold`); mae,
    s_measure, adaptive_f, adaptive_e, weighted_f; sad, mse_alpha, grad, conn (the alpha itself);
    max_f / mean_f and max_e / mean_e are this image's curve max and mean. `curves` holds this
    image's 256-entry precision, recall, fmeasure and emeasure arrays (PySODMetrics' order) so
    that an aggregator can average curves across images.
    """
    s = _prepare(pred, gt)
    tp, pp, gp = _confusion(s, threshold)
    iou, precision, recall = _iou_precision_recall(tp, pp, gp)
    pr, rc, fm = sod.f_measure_curves(s)
    em = sod.e_measure_curve(s)
    pred_bin = binarise(s.pred, threshold)
    sad_value, mse_value = matting.sad_mse(s)
    return {
        "iou": iou,
        "precision": precision,
        "recall": recall,
        "boundary_f": spatial.boundary_f(pred_bin, s.gt),
        "mae": sod.mae(s),
        "s_measure": sod.s_measure(s),
        "max_f": float(fm.max()),
        "mean_f": float(fm.mean()),
        "adaptive_f": sod.adaptive_f_measure(s),
        "max_e": float(em.max()),
        "mean_e": float(em.mean()),
        "adaptive_e": sod.adaptive_e_measure(s),
        "weighted_f": spatial.weighted_f_measure(s),
        "sad": sad_value,
        "mse_alpha": mse_value,
        "grad": matting.gradient_error(s),
        "conn": matting.connectivity_error(s),
        "boundary_iou": matting.boundary_iou(pred_bin, s.gt),
        "curves": {"precision": pr, "recall": rc, "fmeasure": fm, "emeasure": em},
    }
