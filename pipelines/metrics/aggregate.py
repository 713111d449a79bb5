"""`MetricAggregator`: per-image rows in, dataset summary out (metrics.md's aggregation rules).

Why a class at all: the dataset-level F- and E-measure are the max / mean of the *mean curve*
over images (PySODMetrics' convention), which needs every image's 256-entry curves; the other
metrics are plain means of per-image values. Pixels are never pooled across images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .functional import CURVE_KEYS, SCALAR_KEYS, evaluate_pair
from .registry import BY_NAME

# Summary keys that are the mean over images of the per-image value of the same key (the registry
# says which; the others are read off the mean curves).
MEAN_KEYS = tuple(k for k in SCALAR_KEYS if BY_NAME[k].column == k)


class MetricAggregator:
    """Accumulates per-image results; `compute()` gives summary, per-image rows and mean curves.

    >>> agg = MetricAggregator(threshold=0.5)
    >>> row = agg.update(pred, gt, name="img1")   # doctest: +SKIP
    >>> out = agg.compute()                         # doctest: +SKIP
    """

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._rows: list[dict[str, Any]] = []
        self._curves: dict[str, list[np.ndarray]] = {k: [] for k in CURVE_KEYS}
        self._names: set[str] = set()

    def update(self, pred: np.ndarray, gt: np.ndarray, name: str) -> dict[str, Any]:
        """Evaluate one pair (see `evaluate_pair`) and return its per-image row."""
        return self.add(name, evaluate_pair(pred, gt, self.threshold))

    def add(self, name: str, result: dict[str, Any]) -> dict[str, Any]:
        """Add an `evaluate_pair` result computed elsewhere (e.g. in a worker process)."""
        if name in self._names:
            raise ValueError(f"image {name!r} was already added")
        self._names.add(name)
        row: dict[str, Any] = {"name": name, **{k: float(result[k]) for k in SCALAR_KEYS}}
        self._rows.append(row)
        for key in CURVE_KEYS:
            self._curves[key].append(np.asarray(result["curves"][key], dtype=np.float64))
        return row

    def __len__(self) -> int:
        return len(self._rows)

    def mean_curves(self) -> dict[str, np.ndarray]:
        """Mean over images of each 256-entry curve (empty arrays when no image was added)."""
        return {
            k: np.mean(np.stack(v), axis=0) if v else np.zeros(0) for k, v in self._curves.items()
        }

    def compute(self) -> dict[str, Any]:
        """`{"summary", "per_image", "curves"}` as in metrics.md.

        summary: mean over images for iou … weighted_f; max_f / mean_f and max_e / mean_e are the
        max / mean of the mean F- and E-measure curves. With no images every value is None.
        """
        curves = self.mean_curves()
        summary: dict[str, float | None]
        if not self._rows:
            summary = {k: None for k in SCALAR_KEYS}
        else:
            means = {k: float(np.mean([r[k] for r in self._rows])) for k in MEAN_KEYS}
            fm, em = curves["fmeasure"], curves["emeasure"]
            extra = {
                "max_f": float(fm.max()), "mean_f": float(fm.mean()),
                "max_e": float(em.max()), "mean_e": float(em.mean()),
            }  # fmt: skip
            summary = {k: (means[k] if k in means else extra[k]) for k in SCALAR_KEYS}
        return {
            "summary": summary,
            "per_image": [dict(r) for r in self._rows],
            "curves": {k: [float(x) for x in v] for k, v in curves.items()},
        }
