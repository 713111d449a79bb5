"""Cutout-quality metrics on the alpha itself: SAD, MSE, gradient and connectivity errors (alpha
matting, Rhemann et al., CVPR 2009, as mmagic computes them) and Boundary IoU (Cheng et al., CVPR
2021, as the boundary-iou-api's `mask_to_boundary` defines the boundary region).

Conventions (docs/contracts/metrics.md, "Alpha-matte and boundary metrics"):

* alpha = v / 255 of the stored 8-bit prediction, full resolution; ground truth 0/1. The whole
  image is the evaluation region (held-out sets carry no trimap).
* ``sad`` = Σ|alpha − gt| / 1000; ``mse_alpha`` = mean (alpha − gt)². No threshold, no
  normalisation.
* ``grad``: both alphas min–max normalised (`cv2.normalize`, NORM_MINMAX; a constant map becomes 0),
  Gaussian-derivative gradient magnitudes (σ = 1.4, mmagic's `gauss_filter` kernel, replicated
  border), Σ (|∇gt| − |∇alpha|)² / 1000.
* ``conn``: thresholds 0, 0.1, … (mmagic's `np.arange(0, 1 + 0.1, 0.1)`); each pixel's "round-down"
  level is the last threshold up to which it stays in the largest 4-connected component of
  {gt ≥ t} ∩ {alpha ≥ t}; φ = 1 − d·[d ≥ 0.15] with d = alpha − level; Σ|φ_gt − φ_alpha| / 1000.
* ``boundary_iou``: boundary region = mask minus its erosion by d = max(1, round(0.02 × diagonal))
  iterations of a 3×3 square, the mask padded by one background pixel; IoU of the two regions of
  the thresholded prediction and the mask; both empty → 1.

Why these shapes (speed: the metrics command must stay ≥ 10× PySODMetrics on 12 MP images):
SAD and MSE come from the value histograms already built for the SOD family; the gradient kernel
is separable (an outer product), so it runs as two 1-D passes; the connectivity error needs one
connected-components pass per threshold on the GT's bounding box only (outside the GT nothing is
ever in the intersection), then a (level, value) histogram and a 11 × 256 table of the exact
per-pixel terms; an erosion by d iterations of a 3×3 square equals one erosion by a
(2d + 1)-square, run on the mask's bounding box only.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .histograms import PairStats

NORM = 1000.0
GRAD_SIGMA = 1.4
CONN_STEP = 0.1
#: Flood fills tried per threshold before labelling every component instead.
SEED_TRIES = 3
#: mmagic's "only differences of at least 0.15 count" in the connectivity error.
CONN_MIN_DIFF = 0.15
BOUNDARY_DILATION_RATIO = 0.02
_LEVELS = np.arange(256, dtype=np.float64) / 255
# cv2.calcHist counts in float32, exact only below 2**24 per bin: feed it at most 2**23 pixels.
_CHUNK_PIXELS = 1 << 23


def sad_mse(s: PairStats) -> tuple[float, float]:
    """(SAD / 1000, MSE) of alpha = v / 255 against the 0/1 mask, from the value histograms."""
    fg, bg = s.fg_hist.astype(np.float64), s.bg_hist.astype(np.float64)
    miss_fg, miss_bg = 1.0 - _LEVELS, _LEVELS
    sad = float(fg @ miss_fg + bg @ miss_bg)
    sq = float(fg @ (miss_fg * miss_fg) + bg @ (miss_bg * miss_bg))
    return sad / NORM, sq / s.size


def _gauss_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(Gaussian, derivative of Gaussian) 1-D factors of mmagic's normalised `gauss_filter`.

    mmagic builds filter_x[i, j] = g(i − h) · dg(j − h) and divides by its Frobenius norm, which is
    ‖g‖ · ‖dg‖ for an outer product; filter_y is its transpose.
    """
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 1e-2)))
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    dg = -x * g / sigma**2
    return g / np.sqrt((g * g).sum()), dg / np.sqrt((dg * dg).sum())


_G, _DG = _gauss_kernels(GRAD_SIGMA)
_HALF = len(_G) // 2


def _aligned_empty(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """An uninitialised contiguous array starting on a 64-byte boundary.

    OpenCV's vectorised filters and magnitudes round differently (fused multiply-adds in the
    vector body, not in the scalar edges) depending on where the rows start, so the same pixels
    at another address could give another last bit; with every operand aligned, they give one.
    """
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = np.empty(nbytes + 64, np.uint8)
    start = -buf.ctypes.data % 64
    return buf[start : start + nbytes].view(dtype).reshape(shape)


def _aligned(img: np.ndarray) -> np.ndarray:
    """An aligned contiguous copy of `img` (see `_aligned_empty`)."""
    out = _aligned_empty(img.shape, img.dtype.type)
    out[...] = img
    return out


def _gradient_magnitude(img: np.ndarray, gain: float) -> np.ndarray:
    """float32 |∇(gain · img)| with mmagic's kernels and replicated border, from uint8 `img`."""
    img = _aligned(img)
    dg, g = (_DG * gain).astype(np.float32), _G.astype(np.float32)
    gx, gy, mag = (_aligned_empty(img.shape, np.float32) for _ in range(3))
    cv2.sepFilter2D(img, cv2.CV_32F, dg, g, dst=gx, borderType=cv2.BORDER_REPLICATE)
    cv2.sepFilter2D(img, cv2.CV_32F, g, dg, dst=gy, borderType=cv2.BORDER_REPLICATE)
    cv2.magnitude(gx, gy, mag)
    return mag


def _minmax_gain(all_hist: np.ndarray) -> float:
    """Factor from v to `cv2.normalize(v / 255, …, 1, 0, NORM_MINMAX)` up to a shift (which no
    gradient sees): 1 / (255 · (max − min)); 0 for a constant map, which OpenCV sets to 0."""
    present = np.flatnonzero(all_hist)
    lo, hi = _LEVELS[present[0]], _LEVELS[present[-1]]
    return 1.0 / (255 * (hi - lo)) if hi - lo > np.finfo(np.float64).eps else 0.0


def gradient_error(s: PairStats) -> float:
    """Gradient error / 1000 (mmagic `GradientError` with the whole image as the region).

    Filtering is linear, so the min–max normalisation is a gain folded into the kernel and the
    uint8 prediction is filtered directly in float32 (sums in float64): within 1e-5 (relative) of
    the float64 reference. The 0/1 mask normalises to itself (a constant mask to 0, whose gradient
    is 0 either way) and its gradient is 0 beyond `_HALF` pixels of its bounding box, so it is
    filtered on that box only.
    """
    diff = _gradient_magnitude(s.pred, _minmax_gain(s.all_hist))
    box = _bbox(s.gt)
    if box is not None and s.n_fg < s.size:
        h, w = s.gt.shape
        m = _HALF + 1
        rows = slice(max(0, box[0].start - m), min(h, box[0].stop + m))
        cols = slice(max(0, box[1].start - m), min(w, box[1].stop + m))
        # Beyond the box the crop's replicated border is background, as the image is there.
        diff[rows, cols] -= _gradient_magnitude(s.gt[rows, cols], 1.0)
    return float(cv2.norm(diff, cv2.NORM_L2SQR)) / NORM  # `diff` is aligned


def _bbox(mask: np.ndarray) -> tuple[slice, slice] | None:
    """Row and column slices of the non-zero pixels of a uint8 mask (None when it has none)."""
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0 or h == 0:
        return None
    return slice(y, y + h), slice(x, x + w)


def _joint_histogram(
    values: np.ndarray, levels: np.ndarray, mask: np.ndarray, n: int
) -> np.ndarray:
    """counts[level, v] of the `mask` pixels (exact: calcHist fed at most 2**23 pixels at once)."""
    out = np.zeros((n, 256), np.int64)
    rows = max(1, _CHUNK_PIXELS // max(1, values.shape[1]))
    for r in range(0, values.shape[0], rows):
        part = slice(r, r + rows)
        hist = cv2.calcHist(
            [levels[part], values[part]], [0, 1], mask[part], [n, 256], [0, n, 0, 256]
        )
        out += hist.astype(np.int64)
    return out


def _round_down_counts(pred: np.ndarray, gt: np.ndarray, fg_hist: np.ndarray) -> np.ndarray:
    """Each pixel's round-down level as an index into `_conn_steps()`: for how many thresholds
    after the first it stays in the largest 4-connected component ω_t of {gt} ∩ {alpha ≥ t}.

    The pixels still in the running after threshold t are ω_t itself, or none: components of a
    higher threshold nest inside those of a lower one, so ω_t either lies inside ω_(t−0.1) or
    misses it. Hence the next ω is looked for inside the current one first, by a flood fill from
    its highest-alpha pixel: a component holding more than half of the intersection (whose size
    the histogram gives) is the largest, strictly, with no labelling. Otherwise every component
    is labelled as the reference does (`connectedComponents`' labels, the first of maximal area).
    """
    steps = _conn_steps()
    masked = cv2.bitwise_and(pred, pred, mask=gt)  # alpha on the GT, 0 elsewhere
    alive = np.ones(gt.shape, np.uint8)  # ω so far (0/1)
    survived = np.zeros(gt.shape, np.uint8)
    h, w = gt.shape
    win = (slice(0, h), slice(0, w))  # bounding box of `alive`: nothing alive outside it
    for t in steps[1:]:
        first = int(np.searchsorted(_LEVELS, t, side="left"))  # smallest v with v/255 >= t
        total = int(fg_hist[first:].sum())  # |{gt} ∩ {alpha >= t}|
        if total == 0:
            break  # empty intersection: every pixel still alive drops out here
        _, above = cv2.threshold(masked[win], first - 1, 1, cv2.THRESH_BINARY)
        found = _majority_component(pred[win], cv2.bitwise_and(above, alive[win]), total)
        if found is not None:
            omega, (x, y, bw, bh) = found
            alive[win] = omega
            survived[win] += omega
            rows, cols = win
            win = (slice(rows.start + y, rows.start + y + bh),
                   slice(cols.start + x, cols.start + x + bw))  # fmt: skip
            continue
        _, above = cv2.threshold(masked, first - 1, 1, cv2.THRESH_BINARY)
        _, labels = cv2.connectedComponents(above, connectivity=4)
        # Areas by counting labels are the reference's CC_STAT_AREA (and much faster than
        # connectedComponentsWithStats when there are many specks).
        largest = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
        omega = _equal(labels, largest)
        if not cv2.countNonZero(cv2.bitwise_and(omega, alive)):
            break  # the largest component is elsewhere: the rest drop out here
        alive = omega
        survived += alive
        win = _bbox(alive) or win
    return survived


def _majority_component(
    pred: np.ndarray, inter: np.ndarray, total: int
) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """A 4-connected component of `inter` (0/1; marked in place) with more than half of `total`
    pixels, as 0/1 with its bounding rectangle (x, y, w, h), or None when none is found within
    `SEED_TRIES` flood fills (or too few pixels are left for one).

    Seeds are the highest-alpha pixels left: deep inside a subject rather than on a speck that
    broke off its edge.
    """
    left = cv2.countNonZero(inter)
    candidates = inter
    for _ in range(SEED_TRIES):
        if 2 * left <= total:
            return None  # what is left cannot hold a majority
        _, _, _, seed = cv2.minMaxLoc(pred, mask=candidates)
        area, _, _, rect = cv2.floodFill(inter, None, seed, 2, 0, 0, 4)
        if 2 * area > total:
            x, y, w, h = rect
            return _equal(inter, 2), (int(x), int(y), int(w), int(h))
        left -= area
        inter[inter == 2] = 3  # a small component: not a seed again
        candidates = _equal(inter, 1)
    return None


def _equal(a: np.ndarray, value: int) -> np.ndarray:
    """uint8 0/1 of a == value (numpy: OpenCV reads a scalar beside a tiny array as an array)."""
    return np.equal(a, value).view(np.uint8)


def _conn_steps() -> np.ndarray:
    """mmagic's thresholds, float quirks included: `np.arange(0, 1 + step, step)`."""
    return np.arange(0, 1 + CONN_STEP, CONN_STEP)


def connectivity_error(s: PairStats) -> float:
    """Connectivity error / 1000 (mmagic `ConnectivityError`, step 0.1, whole image as region)."""
    steps = _conn_steps()
    n_levels = len(steps)
    counts = np.zeros((2, n_levels, 256), np.int64)
    # Outside the GT nothing is ever in an intersection: those pixels round down to steps[0].
    counts[0, 0] = s.bg_hist
    box = _bbox(s.gt)
    if box is not None:
        pred, gt = s.pred[box], s.gt[box]
        survived = _round_down_counts(pred, gt, s.fg_hist)
        counts[1] = _joint_histogram(pred, survived, gt, n_levels)
    level = steps[:, None]
    gt_diff = np.array([0.0, 1.0])[:, None, None] - level[None]
    pred_diff = _LEVELS[None, :] - level
    gt_phi = 1 - gt_diff * (gt_diff >= CONN_MIN_DIFF)
    pred_phi = 1 - pred_diff * (pred_diff >= CONN_MIN_DIFF)
    table = np.abs(gt_phi - pred_phi[None])
    return float((counts * table).sum()) / NORM


def boundary_erosion(shape: tuple[int, ...]) -> int:
    """d = max(1, round(0.02 × image diagonal)) (Python's round, as the reference uses)."""
    h, w = shape[:2]
    return max(1, round(BOUNDARY_DILATION_RATIO * math.sqrt(h * h + w * w)))


def boundary_region(mask: np.ndarray, d: int | None = None) -> np.ndarray:
    """uint8 0/1: `mask` minus its erosion by `d` 3×3 iterations, padded by one background pixel.

    Equal to the reference `mask_to_boundary(mask, 0.02)` when `d` is None.
    """
    mask = (np.asarray(mask) != 0).astype(np.uint8)
    return _boundary_region(mask, boundary_erosion(mask.shape) if d is None else d)


def _boundary_region(mask: np.ndarray, d: int) -> np.ndarray:
    """`boundary_region` of a uint8 0/1 mask."""
    out = np.zeros_like(mask)
    box = _bbox(mask)
    if box is None:
        return out
    # Pixels outside the bounding box are background, so padding the box by one background pixel
    # erodes exactly as padding the whole image does.
    crop = cv2.copyMakeBorder(mask[box], 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    # Eroding by d iterations of a 3×3 square keeps exactly the pixels whose chessboard distance
    # to the nearest background pixel exceeds d (the 3×3 chamfer of DIST_C is exact); 8-bit
    # distances saturate at 255, so they do only while d < 255.
    depth = cv2.CV_8U if d < 255 else cv2.CV_32F
    dist = cv2.distanceTransform(crop, cv2.DIST_C, 3, dstType=depth)[1:-1, 1:-1]
    out[box] = cv2.bitwise_and(mask[box], np.less_equal(dist, d).view(np.uint8))
    return out


def boundary_iou(pred_bin: np.ndarray, gt_bin: np.ndarray) -> float:
    """Boundary IoU of two uint8 0/1 masks of one shape; both boundary regions empty → 1."""
    d = boundary_erosion(gt_bin.shape)
    pb, gb = _boundary_region(pred_bin, d), _boundary_region(gt_bin, d)
    union = cv2.countNonZero(cv2.bitwise_or(pb, gb))
    if union == 0:
        return 1.0
    return cv2.countNonZero(cv2.bitwise_and(pb, gb)) / union


__all__ = [
    "boundary_erosion",
    "boundary_iou",
    "boundary_region",
    "connectivity_error",
    "gradient_error",
    "sad_mse",
]
