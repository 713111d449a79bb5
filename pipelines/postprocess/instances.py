"""Instance separation: one cutout per subject.

Why connected components: most subject-lifting models output a single alpha for all subjects; the
disconnected foreground regions are the natural instances (two people apart, a cup next to a
laptop). Specks below a minimum area are dropped — they are noise, not subjects a user would lift.
When a model has an instance head, its label map is used instead (it can split touching subjects,
which components cannot).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipelines.masks import pred_foreground

#: Smallest instance as a share of the image area. 0.2 %: at 512×512 that is ~500 px (a 22×22 blob),
#: at 12 MP ~24 000 px; smaller regions are, in practice, stray speckles of a soft alpha rather than
#: subjects (a person at the far edge of a group photo still covers more than this).
MIN_INSTANCE_AREA_FRACTION = 0.002


@dataclass(frozen=True)
class Instance:
    """One subject: ``label`` (1 = largest), ``area`` in pixels, ``bbox`` (x, y, w, h)."""

    label: int
    area: int
    bbox: tuple[int, int, int, int]


@dataclass
class Instances:
    """Label map (H×W int32; 0 = background, 1..n by decreasing area) and the instances in order."""

    labels: np.ndarray
    items: list[Instance]

    def __len__(self) -> int:
        return len(self.items)

    def mask(self, label: int) -> np.ndarray:
        """Boolean mask of one instance."""
        return self.labels == label


def _relabel(labels: np.ndarray, stats: np.ndarray, min_area: int) -> Instances:
    """Keep labels with area >= min_area, renumbered 1..n by decreasing area (ties: old order).

    ``stats`` is cv2's connected-component table (row k: x, y, w, h, area of label k; row 0 is
    the background).
    """
    areas = stats[:, cv2.CC_STAT_AREA]
    keep = [k for k in range(1, len(stats)) if areas[k] >= min_area]
    keep.sort(key=lambda k: (-int(areas[k]), k))
    lut = np.zeros(len(stats), dtype=np.int32)
    items = []
    for new, old in enumerate(keep, start=1):
        lut[old] = new
        x, y, w, h = (int(v) for v in stats[old, :4])
        items.append(Instance(new, int(areas[old]), (x, y, w, h)))
    return Instances(lut[labels], items)


def _label_stats(dense: np.ndarray, n: int) -> np.ndarray:
    """cv2-style stats table (x, y, w, h, area) for a label map with labels 0..n."""
    stats = np.zeros((n + 1, 5), dtype=np.int64)
    stats[:, cv2.CC_STAT_AREA] = np.bincount(dense.ravel(), minlength=n + 1)
    for k in range(1, n + 1):
        stats[k, :4] = cv2.boundingRect((dense == k).astype(np.uint8))
    return stats


def separate_instances(
    alpha_png: np.ndarray,
    *,
    min_area_fraction: float = MIN_INSTANCE_AREA_FRACTION,
    instance_map: np.ndarray | None = None,
) -> Instances:
    """Instances of an 8-bit alpha (H×W uint8).

    Without ``instance_map``: 8-connected components of ``alpha_png >= 128``. With it (an integer
    label map from a model's instance head, 0 = background, any resolution — resized by nearest
    neighbour), each label restricted to the same foreground is an instance. Either way instances
    smaller than ``min_area_fraction`` of the image are dropped and labels are sorted by area.
    """
    if alpha_png.ndim != 2 or alpha_png.dtype != np.uint8:
        raise ValueError(f"alpha_png must be H×W uint8, got {alpha_png.shape} {alpha_png.dtype}")
    fg = pred_foreground(alpha_png)
    h, w = alpha_png.shape
    min_area = max(1, int(np.ceil(min_area_fraction * h * w)))
    if instance_map is None:
        _, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
        return _relabel(labels, stats, min_area)
    imap = np.asarray(instance_map)
    if imap.ndim != 2:
        raise ValueError(f"instance_map must be 2-D, got shape {imap.shape}")
    if imap.shape != (h, w):
        imap = cv2.resize(imap.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
    imap = np.where(fg & (imap > 0), imap, 0)
    ids, dense = np.unique(imap, return_inverse=True)
    dense = dense.reshape(h, w).astype(np.int32)
    if ids[0] != 0:  # every pixel labelled: shift so that 0 stays the (empty) background
        dense += 1
        ids = np.concatenate([[0], ids])
    return _relabel(dense, _label_stats(dense, len(ids) - 1), min_area)
