"""The SOD family (MAE, S-measure, E- and F-measure curves) computed from `PairStats`.

Semantics are exactly PySODMetrics 1.6's (see metrics.md): the prediction is `v / 255`, min–max
normalised when not constant; GT is a boolean mask. Each formula below keeps PySODMetrics'
expression order so the 256-entry results agree to the last bits where counts are equal; only
sums over pixels become sums over histogram bins (differences ~1e-15).

Two places where PySODMetrics' result hinges on float rounding of a full-resolution sum are
recomputed on the full-resolution array exactly as it does (rare, documented at each):
an adaptive threshold that lands on a prediction level, and a constant-valued S-measure quadrant.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .histograms import EPS, PairStats

N_THRESHOLDS = 256
# An adaptive threshold this close to a prediction level could fall on either side of it
# depending on summation order: recompute the mean as PySODMetrics does.
_TIE_TOLERANCE = 1e-9


def mae(s: PairStats) -> float:
    """Mean absolute error between the normalised prediction and the binary GT."""
    lv = s.levels
    total = s.fg_hist @ np.abs(lv - 1) + s.bg_hist @ lv
    return float(total / s.size)


def _mean_pred(s: PairStats) -> float:
    return float(s.all_hist @ s.levels / s.size)


def adaptive_threshold(s: PairStats) -> float:
    """`min(2 × mean prediction, 1)`, PySODMetrics' adaptive threshold on the normalised scale."""
    threshold = min(2 * _mean_pred(s), 1.0)
    present = s.levels[s.all_hist > 0]
    if np.any(np.abs(present - threshold) <= _TIE_TOLERANCE):
        # `pred >= threshold` is decided by the last bit of the mean: use numpy's own sum
        # over the same full-resolution float64 array that PySODMetrics averages.
        threshold = min(2 * float(np.mean(s.levels[s.pred])), 1.0)
    return threshold


# ---------------------------------------------------------------------------------------------
# S-measure (Fan et al., ICCV 2017), alpha = 0.5


def s_measure(s: PairStats, alpha: float = 0.5) -> float:
    """Structure measure: alpha × object score + (1 − alpha) × region score, floored at 0.

    Degenerate cases (PySODMetrics): empty GT → 1 − mean(pred); full GT → mean(pred).
    Deviation: when the GT centroid rounds to the last row/column one quadrant has zero area and
    PySODMetrics returns NaN (mean of an empty array); here that quadrant, whose weight is 0,
    contributes 0.
    """
    y = s.n_fg / s.size
    if y == 0:
        return float(1 - _mean_pred(s))
    if y == 1:
        return float(_mean_pred(s))
    object_score = _object(s) * alpha
    region_score = _region(s) * (1 - alpha)
    return float(max(0.0, object_score + region_score))


def _s_object(counts: np.ndarray, values: np.ndarray) -> float:
    """2·mean / (mean² + 1 + std + eps) of the pixels described by a histogram (std with ddof=1)."""
    n = int(counts.sum())
    mean = counts @ values / n
    std = float(np.sqrt(counts @ (values - mean) ** 2 / (n - 1))) if n > 1 else 0.0
    return float(2 * mean / (np.power(mean, 2) + 1 + std + EPS))


def _object(s: PairStats) -> float:
    gt_mean = s.n_fg / s.size
    fg_score = _s_object(s.fg_hist, s.levels) * gt_mean
    bg_score = _s_object(s.bg_hist, 1 - s.levels) * (1 - gt_mean)
    return fg_score + bg_score


def _region(s: PairStats) -> float:
    h, w = s.pred.shape
    area = h * w
    cy, cx = s.split
    w_lt = cx * cy / area
    w_rt = cy * (w - cx) / area
    w_lb = (h - cy) * cx / area
    w_rb = 1 - w_lt - w_rt - w_lb
    weights = (w_lt, w_rt, w_lb, w_rb)
    scores = [_ssim(s, q) * weights[q] for q in range(4)]
    return scores[0] + scores[1] + scores[2] + scores[3]


def _ssim(s: PairStats, q: int) -> float:
    """SSIM of quadrant q, from its histograms (PySODMetrics' `Smeasure.ssim`)."""
    counts, fg = s.all[q], s.fg[q]
    n = int(counts.sum())
    if n == 0:
        return 0.0  # zero-area quadrant (weight 0); PySODMetrics gives NaN here
    present = np.flatnonzero(counts)
    lv = s.levels
    if present.size == 1 and lv[present[0]] not in (0.0, 1.0):
        # Constant prediction in this quadrant: PySODMetrics' float mean of the constant is not
        # always the constant, and whether the variances come out exactly 0 flips its result
        # between 0 and 1. Redo it on the same full-resolution view it uses.
        return _ssim_full_resolution(s, q)
    n_fg = int(fg.sum())
    x = counts @ lv / n
    y = n_fg / n
    d = lv - x
    sigma_x = counts @ (d * d) / (n - 1 + EPS)
    sigma_y = (n_fg * (1 - y) ** 2 + (n - n_fg) * (0 - y) ** 2) / (n - 1 + EPS)
    sigma_xy = (fg @ d * (1 - y) + (counts - fg) @ d * (0 - y)) / (n - 1 + EPS)
    return _ssim_score(float(x), y, float(sigma_x), float(sigma_y), float(sigma_xy))


def _ssim_score(x: float, y: float, sigma_x: float, sigma_y: float, sigma_xy: float) -> float:
    alpha = 4 * x * y * sigma_xy
    beta = (x**2 + y**2) * (sigma_x + sigma_y)
    if alpha != 0:
        return alpha / (beta + EPS)
    if beta == 0:
        return 1.0
    return 0.0


def _ssim_full_resolution(s: PairStats, q: int) -> float:
    rows, cols = s.quadrants()[q]
    pred = s.levels[s.pred][rows, cols]
    gt = s.gt[rows, cols].astype(bool)
    n = pred.size
    x, y = np.mean(pred), np.mean(gt)
    sigma_x = np.sum((pred - x) ** 2) / (n - 1 + EPS)
    sigma_y = np.sum((gt - y) ** 2) / (n - 1 + EPS)
    sigma_xy = np.sum((pred - x) * (gt - y)) / (n - 1 + EPS)
    return _ssim_score(float(x), float(y), float(sigma_x), float(sigma_y), float(sigma_xy))


# ---------------------------------------------------------------------------------------------
# F-measure (Achanta et al., CVPR 2009), beta² = 0.3, 256 thresholds


def _cumulative(s: PairStats) -> tuple[np.ndarray, np.ndarray]:
    """Pixels with bin >= t on GT foreground / background, for t = 255, 254, ..., 0."""
    bins = s.bins
    fg = np.bincount(bins, weights=s.fg_hist, minlength=256).astype(np.int64)
    bg = np.bincount(bins, weights=s.bg_hist, minlength=256).astype(np.int64)
    return np.cumsum(np.flip(fg), axis=0), np.cumsum(np.flip(bg), axis=0)


def f_measure_curves(s: PairStats, beta2: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F-measure at the 256 thresholds, in PySODMetrics' order.

    Index k is the threshold 255 − k on `(p × 255).astype(uint8)` (pixel is foreground when its
    bin >= 255 − k). Zero denominators (no predicted foreground, empty GT) give precision /
    recall 0, and F = 0 wherever precision × recall = 0.
    """
    tps, bg_w_thrs = _cumulative(s)
    ps = tps + bg_w_thrs
    ps[ps == 0] = 1
    t = max(s.n_fg, 1)
    precisions = tps / ps
    recalls = tps / t
    numerator = (1 + beta2) * precisions * recalls
    denominator = np.where(numerator == 0, 1, beta2 * precisions + recalls)
    return precisions, recalls, numerator / denominator


def adaptive_f_measure(s: PairStats, beta2: float = 0.3) -> float:
    """F-measure of `p >= adaptive_threshold`; 0 when nothing of the GT is predicted."""
    selected = s.levels >= adaptive_threshold(s)
    intersection = int(s.fg_hist[selected].sum())
    if intersection == 0:
        return 0.0
    pre = intersection / int(s.all_hist[selected].sum())
    rec = intersection / s.n_fg
    return float((1 + beta2) * pre * rec / (beta2 * pre + rec))


# ---------------------------------------------------------------------------------------------
# E-measure (Fan et al., IJCAI 2018), 256 thresholds + adaptive


def _enhanced_sum(s: PairStats, fg_fg: Any, fg_bg: Any) -> np.ndarray:
    """Sum of the enhanced alignment matrix given predicted-foreground counts on GT fg / bg.

    The alignment term only depends on (binary prediction, GT) and the two global means, so the
    sum over pixels is four counts × four values (PySODMetrics' histogram identity).
    Empty GT: the number of predicted-background pixels; full GT: predicted-foreground pixels.
    """
    gt_size, gt_fg = s.size, s.n_fg
    pred_fg = fg_fg + fg_bg
    pred_bg = gt_size - pred_fg
    if gt_fg == 0:
        return np.asarray(pred_bg, dtype=np.float64)
    if gt_fg == gt_size:
        return np.asarray(pred_fg, dtype=np.float64)
    bg_fg = gt_fg - fg_fg
    bg_bg = pred_bg - bg_fg
    mean_pred = pred_fg / gt_size
    mean_gt = gt_fg / gt_size
    pred_values = (1 - mean_pred, 1 - mean_pred, 0 - mean_pred, 0 - mean_pred)
    gt_values = (1 - mean_gt, 0 - mean_gt, 1 - mean_gt, 0 - mean_gt)
    parts = (fg_fg, fg_bg, bg_fg, bg_bg)
    results = []
    for part, a, b in zip(parts, pred_values, gt_values, strict=True):
        align = 2 * (a * b) / (a**2 + b**2 + EPS)
        results.append((align + 1) ** 2 / 4 * part)
    total = results[0] + results[1] + results[2] + results[3]
    return np.asarray(total, dtype=np.float64)


def e_measure_curve(s: PairStats) -> np.ndarray:
    """E-measure at the 256 thresholds, same order as `f_measure_curves` (index k ↔ bin 255 − k).

    Normalised by `size − 1 + eps` as PySODMetrics (and the original MATLAB code) does.
    """
    fg_fg, fg_bg = _cumulative(s)
    return _enhanced_sum(s, fg_fg, fg_bg) / (s.size - 1 + EPS)  # type: ignore[no-any-return]


def adaptive_e_measure(s: PairStats) -> float:
    """E-measure of `p >= adaptive_threshold`."""
    selected = s.levels >= adaptive_threshold(s)
    fg_fg = int(s.fg_hist[selected].sum())
    fg_bg = int(s.bg_hist[selected].sum())
    return float(_enhanced_sum(s, np.int64(fg_fg), np.int64(fg_bg)) / (s.size - 1 + EPS))
