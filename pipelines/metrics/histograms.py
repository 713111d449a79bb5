"""Per-pair value histograms from which every SOD metric is derived.

Why: an 8-bit prediction has at most 256 distinct values, so every PySODMetrics quantity (MAE,
S-measure means/variances, the 256-threshold F- and E-measure curves, adaptive thresholds) is a
function of "how many pixels of value v lie on GT foreground / background", optionally per
S-measure quadrant. Two passes of `cv2.calcHist` over the image replace PySODMetrics' dozens of
full-resolution float64 passes, and the 256-entry level table reproduces its float arithmetic
bit for bit (`pred / 255`, then min–max normalisation when not constant).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

EPS = float(np.spacing(1))
"""PySODMetrics' `EPS` (MATLAB's eps), used in the same places it uses it."""

# cv2.calcHist counts in float32, exact only below 2**24 per bin: feed it at most 2**23 pixels.
_CHUNK_PIXELS = 1 << 23


def value_histogram(img: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Exact int64 counts of the 256 values of a 2-D uint8 `img` (where `mask` != 0)."""
    out = np.zeros(256, np.int64)
    h, w = img.shape
    if h == 0 or w == 0:
        return out
    rows = max(1, _CHUNK_PIXELS // w)
    for r in range(0, h, rows):
        part = img[r : r + rows]
        sub = None if mask is None else mask[r : r + rows]
        out += cv2.calcHist([part], [0], sub, [256], [0, 256]).ravel().astype(np.int64)
    return out


def normalised_levels(all_hist: np.ndarray) -> np.ndarray:
    """p(v) for v = 0..255, exactly as PySODMetrics normalises a prediction.

    `v / 255` in float64, then `(p - min) / (max - min)` over the values present when they are not
    all equal (a constant prediction is left as v / 255). Entries of absent values are meaningless
    but finite; they are always weighted by a zero count.
    """
    levels = np.arange(256, dtype=np.float64) / 255
    present = np.flatnonzero(all_hist)
    if present.size:
        lo, hi = levels[present[0]], levels[present[-1]]
        if hi != lo:
            levels = (levels - lo) / (hi - lo)
    return levels


@dataclass(frozen=True)
class PairStats:
    """Histograms of one prediction/GT pair, plus the arrays for the rare exact fallbacks.

    `fg[q, v]` / `all[q, v]`: pixels of value v on GT foreground / anywhere in S-measure quadrant q
    (order: top-left, top-right, bottom-left, bottom-right) split at row `split[0]` and column
    `split[1]` (PySODMetrics' rounded GT centroid + 1; the image centre when GT is empty).
    """

    pred: np.ndarray  # uint8 (H, W)
    gt: np.ndarray  # uint8 (H, W), 1 = foreground
    fg: np.ndarray
    all: np.ndarray
    split: tuple[int, int]

    @property
    def size(self) -> int:
        return int(self.pred.size)

    @cached_property
    def fg_hist(self) -> np.ndarray:
        return self.fg.sum(axis=0)  # type: ignore[no-any-return]

    @cached_property
    def all_hist(self) -> np.ndarray:
        return self.all.sum(axis=0)  # type: ignore[no-any-return]

    @cached_property
    def bg_hist(self) -> np.ndarray:
        return self.all_hist - self.fg_hist  # type: ignore[no-any-return]

    @cached_property
    def n_fg(self) -> int:
        return int(self.fg.sum())

    @cached_property
    def levels(self) -> np.ndarray:
        return normalised_levels(self.all_hist)

    @cached_property
    def bins(self) -> np.ndarray:
        """PySODMetrics' histogram bin of each value: `(p * 255).astype(np.uint8)` (truncation)."""
        levels = self.levels
        bins = np.zeros(256, np.intp)
        present = np.flatnonzero(self.all_hist)
        bins[present] = (levels[present] * 255).astype(np.uint8)
        return bins

    def quadrants(self) -> list[tuple[slice, slice]]:
        """Row/column slices of the four S-measure quadrants, in `fg`/`all` order."""
        cy, cx = self.split
        h, w = self.pred.shape
        top, bottom = slice(0, cy), slice(cy, h)
        left, right = slice(0, cx), slice(cx, w)
        return [(top, left), (top, right), (bottom, left), (bottom, right)]


def centroid_split(gt: np.ndarray) -> tuple[int, int]:
    """PySODMetrics' S-measure split point: `argwhere(gt).mean(0).round()` + 1 (centre if empty).

    Coordinate sums are exact integers here and in PySODMetrics' float64 mean (all partial sums
    < 2**53), so the division and numpy's round-half-to-even give the same integers.
    """
    h, w = gt.shape
    per_row = cv2.reduce(gt, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel().astype(np.int64)
    per_col = cv2.reduce(gt, 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel().astype(np.int64)
    n = int(per_row.sum())
    if n == 0:
        cy, cx = np.round(h / 2), np.round(w / 2)
    else:
        cy = np.round(int(per_row @ np.arange(h)) / n)
        cx = np.round(int(per_col @ np.arange(w)) / n)
    return int(cy) + 1, int(cx) + 1


def pair_stats(pred: np.ndarray, gt: np.ndarray) -> PairStats:
    """Build `PairStats` from a uint8 prediction and a uint8 0/1 foreground mask of equal shape."""
    split = centroid_split(gt)
    stats = PairStats(
        pred=pred,
        gt=gt,
        fg=np.zeros((4, 256), np.int64),
        all=np.zeros((4, 256), np.int64),
        split=split,
    )
    for q, (rows, cols) in enumerate(stats.quadrants()):
        p, g = pred[rows, cols], gt[rows, cols]
        stats.all[q] = value_histogram(p)
        stats.fg[q] = value_histogram(p, g)
    return stats
