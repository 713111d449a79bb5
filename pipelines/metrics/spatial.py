"""Metrics that need pixel geometry: weighted F-measure and boundary F.

Why this is fast: PySODMetrics' weighted F (its slowest metric) runs scipy's feature transform
and a float64 7×7 convolution over the whole image. Here OpenCV's exact Euclidean distance
transform (`DIST_MASK_PRECISE`) runs only within 200 px of the GT, the blur only on the GT's
bounding box, and the nearest-GT lookup only on the 3-px band around the GT. Boundary F settles
most boundary pixels with two cheap square dilations and needs a distance transform only for the
few pixels near the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from .histograms import EPS, PairStats

_GAUSS_RADIUS = 3  # fspecial('gaussian', 7, 5): 7×7, sigma 5
_GAUSS_SIGMA = 5.0
# d² <= 18 reaches every pixel within Chebyshev distance 3 of the foreground (3² + 3²).
_NEAREST_OFFSETS = sorted(
    ((dy, dx) for dy in range(-4, 5) for dx in range(-4, 5) if 0 < dy * dy + dx * dx <= 18),
    key=lambda o: (o[0] ** 2 + o[1] ** 2, o[1], o[0]),
)
# Beyond 200 px, 2 − 0.5^(d/5) is 2 to within 1e-12: no distance transform needed there.
_FAR = 200
_BOUNDARY_TOLERANCE = 0.0075  # × image diagonal, rounded up
_SQUARE3 = np.ones((3, 3), np.uint8)


def _gauss_1d() -> np.ndarray:
    """1-D factor of MATLAB's `fspecial('gaussian', 7, 5)` (which is separable and normalised)."""
    x = np.arange(-_GAUSS_RADIUS, _GAUSS_RADIUS + 1, dtype=np.float64)
    g = np.exp(-(x * x) / (2 * _GAUSS_SIGMA * _GAUSS_SIGMA))
    return (g / g.sum()).astype(np.float32)


def _nearest_foreground_values(gt: np.ndarray, error: np.ndarray, band: np.ndarray) -> np.ndarray:
    """For each `band` pixel, `error` at its nearest GT-foreground pixel (Euclidean).

    Replaces scipy's `distance_transform_edt(..., return_indices=True)` of PySODMetrics: only
    pixels within 3 of the foreground feed the 7×7 blur at foreground pixels, so a short sorted
    list of offsets suffices. Ties go to the leftmost, then uppermost candidate, which is what
    scipy's two-pass feature transform picks in the cases we checked.
    """
    ys, xs = np.nonzero(band)
    h, w = gt.shape
    out = np.zeros(ys.size, np.float32)
    todo = np.arange(ys.size)
    for dy, dx in _NEAREST_OFFSETS:
        if todo.size == 0:
            break
        ty, tx = ys[todo] + dy, xs[todo] + dx
        inside = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
        hit = inside & (gt[ty.clip(0, h - 1), tx.clip(0, w - 1)] != 0)
        out[todo[hit]] = error[ty[hit], tx[hit]]
        todo = todo[~hit]
    return out


def _distance_to_zero(mask: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance of each pixel to the nearest zero of `mask` (float32).

    OpenCV's precise transform can differ in the last bit with its thread partitioning (and so
    between pool workers); distances are square roots of integers, so snapping d² to the nearest
    integer makes them reproducible. The snap is exact up to d ≈ 1000 px; the weighted F uses
    d only through 0.5^(d/5), which is below 1e-12 from 200 px on.
    """
    d = cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    np.multiply(d, d, out=d)
    np.rint(d, out=d)
    return np.sqrt(d, out=d)


def _grown_box(rect: Sequence[int], margin: int, shape: tuple[int, ...]) -> tuple[slice, slice]:
    x, y, w, h = rect
    return (
        slice(max(0, y - margin), min(shape[0], y + h + margin)),
        slice(max(0, x - margin), min(shape[1], x + w + margin)),
    )


def weighted_f_measure(s: PairStats, beta: float = 1.0) -> float:
    """Weighted F-measure (Margolin et al., CVPR 2014), PySODMetrics' port of the MATLAB code.

    With p the normalised prediction: error E = |p − GT|; on the GT it is replaced by
    min(E, 7×7 Gaussian(σ=5) blur of E extended outwards from the nearest GT pixel); off the GT
    it is weighted by B = 2 − 0.5^(d/5), d = distance to the GT. Degenerate case (PySODMetrics):
    empty GT → 0. Agrees with PySODMetrics to ~1e-8 (float32 blur and distances, B taken as 2
    beyond 200 px where it differs by < 1e-12, ties between equidistant nearest GT pixels).
    """
    gt, n_fg = s.gt, s.n_fg
    if n_fg == 0:
        return 0.0
    levels32 = s.levels.astype(np.float32)
    rect = cv2.boundingRect(gt)

    # FPw = Σ_bg p·B = 2·Σ_bg p − Σ_bg p·0.5^(d/5); the second sum only near the GT.
    rows, cols = _grown_box(rect, _FAR, gt.shape)
    pred_c = cv2.LUT(s.pred[rows, cols], levels32)
    background = 1 - gt[rows, cols]
    decay = _distance_to_zero(background)
    np.multiply(decay, np.float32(math.log(0.5) / 5), out=decay)
    np.exp(decay, out=decay)
    np.multiply(decay, pred_c, out=decay)
    np.multiply(decay, background, out=decay)
    # numpy's pairwise float64 sum: unlike cv2.mean, independent of OpenCV's thread count.
    near_sum = float(np.sum(decay, dtype=np.float64))
    fp_w = 2 * float(s.bg_hist @ s.levels) - near_sum

    # Pixel dependency on the GT, on its bounding box grown by the blur radius.
    r = _GAUSS_RADIUS
    rows, cols = _grown_box(rect, r, gt.shape)
    gt_c = np.ascontiguousarray(gt[rows, cols])
    error = 1 - cv2.LUT(s.pred[rows, cols], levels32)  # E on the GT
    et = cv2.multiply(error, gt_c, dtype=cv2.CV_32F)
    band = cv2.subtract(cv2.dilate(gt_c, np.ones((2 * r + 1, 2 * r + 1), np.uint8)), gt_c)
    et[band != 0] = _nearest_foreground_values(gt_c, error, band)
    k = _gauss_1d()
    ea = cv2.sepFilter2D(et, cv2.CV_32F, k, k, borderType=cv2.BORDER_CONSTANT)
    min_e_ea = np.minimum(ea, error)
    np.multiply(min_e_ea, gt_c, out=min_e_ea)
    ew_fg_sum = float(np.sum(min_e_ea, dtype=np.float64))

    tp_w = n_fg - ew_fg_sum
    recall = 1 - ew_fg_sum / n_fg
    precision = tp_w / (tp_w + fp_w + EPS)
    return float((1 + beta) * recall * precision / (recall + beta * precision + EPS))


def boundary_tolerance(shape: tuple[int, ...]) -> int:
    """ceil(0.0075 × image diagonal) pixels (1e-9 slack so an exact product is not rounded up)."""
    return max(0, math.ceil(_BOUNDARY_TOLERANCE * math.hypot(shape[0], shape[1]) - 1e-9))


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """Mask minus its 3×3 erosion; outside the image counts as background.

    So a mask touching the frame has a boundary along it: an all-foreground GT against an
    empty prediction scores 0, not "both boundaries empty".
    """
    eroded = cv2.erode(mask, _SQUARE3, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.subtract(mask, eroded)


def boundary_f(pred_bin: np.ndarray, gt_bin: np.ndarray) -> float:
    """Boundary F1 of two uint8 0/1 masks.

    Boundary precision = share of predicted boundary pixels within `boundary_tolerance` (Euclidean)
    of a GT boundary pixel; recall likewise the other way; F = 2PR / (P + R). Both boundaries
    empty → 1; one empty (or P + R = 0) → 0.
    """
    tol = boundary_tolerance(gt_bin.shape)
    pb, gb = mask_boundary(pred_bin), mask_boundary(gt_bin)
    n_p, n_g = cv2.countNonZero(pb), cv2.countNonZero(gb)
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    precision, recall = _within(pb, gb, tol) / n_p, _within(gb, pb, tol) / n_g
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _square(half: int) -> np.ndarray:
    return np.ones((2 * half + 1, 2 * half + 1), np.uint8)


def _within(points: np.ndarray, targets: np.ndarray, tol: int) -> int:
    """How many `points` pixels lie within Euclidean distance `tol` of a `targets` pixel.

    Why not one distance transform: two square dilations (cheap) settle almost every point:
    Chebyshev distance <= tol/√2 implies Euclidean <= tol, Chebyshev > tol rules it out. Only the
    points in between get an exact distance transform, on their bounding box grown by `tol`.
    """
    found = cv2.findNonZero(points)
    if found is None:
        return 0
    xs, ys = found.reshape(-1, 2).T
    inner = int(tol / math.sqrt(2))
    sure = cv2.dilate(targets, _square(inner))[ys, xs] != 0
    maybe = ~sure & (cv2.dilate(targets, _square(tol))[ys, xs] != 0)
    count = int(np.count_nonzero(sure))
    if not maybe.any():
        return count
    my, mx = ys[maybe], xs[maybe]
    h, w = targets.shape
    y0, x0 = max(0, int(my.min()) - tol), max(0, int(mx.min()) - tol)
    y1, x1 = min(h, int(my.max()) + tol + 1), min(w, int(mx.max()) + tol + 1)
    dist = cv2.distanceTransform(1 - targets[y0:y1, x0:x1], cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # Distances are square roots of integers; the next one above tol is more than 1/(2·tol + 1)
    # away, so this slack absorbs OpenCV's last-bit differences without admitting it.
    slack = 1 / (4 * tol + 2)
    return count + int(np.count_nonzero(dist[my - y0, mx - x0] <= tol + slack))
