"""Run-to-run noise: how much the same evaluation moves when it is simply run again.

Given the per-image metrics of a run and of its reproduction (same model, set, runtime and
post-processing), :func:`run_to_run_noise` reports per metric how far the two disagree: per image
(the largest and mean absolute difference) and on the run-level mean. A delta between two
*different* runs that is no larger than the noise of the runs involved
(:func:`delta_within_noise`) is not evidence of a difference: compare pages and release reports
mark such deltas.

Conventions: the two inputs are aligned (index i is the same image in both); pairs where either
side is NaN (a metric undefined for that image) are ignored; a metric with no valid pair has
``n == 0`` and NaN levels. Deterministic runtimes reproduce with zero noise, so then any nonzero
delta counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

#: Deltas this close to the noise level count as within it (float rounding of stored metrics).
NOISE_EPS = 1e-12


@dataclass(frozen=True)
class MetricNoise:
    """Run-to-run disagreement on one metric.

    ``max_abs_item_delta``: max over images of |a_i − b_i| (the "max |Δ metric|" of a verdict).
    ``mean_abs_item_delta``: mean over images of |a_i − b_i|.
    ``mean_delta``: |mean(a) − mean(b)|, the noise of the run-level number a page shows.
    ``changed``: images whose value differs at all.
    """

    metric: str
    n: int
    changed: int
    max_abs_item_delta: float
    mean_abs_item_delta: float
    mean_delta: float

    @property
    def identical(self) -> bool:
        return self.n > 0 and self.changed == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def metric_noise(metric: str, first: ArrayLike, second: ArrayLike) -> MetricNoise:
    """Noise of one metric from two aligned per-image arrays (see the module conventions)."""
    a = np.asarray(first, dtype=np.float64).ravel()
    b = np.asarray(second, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(
            f"{metric}: the two runs have {a.size} and {b.size} values; pass aligned arrays"
        )
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if not a.size:
        nan = float("nan")
        return MetricNoise(metric, 0, 0, nan, nan, nan)
    d = np.abs(a - b)
    return MetricNoise(
        metric=metric,
        n=int(a.size),
        changed=int(np.count_nonzero(d)),
        max_abs_item_delta=float(d.max()),
        mean_abs_item_delta=float(d.mean()),
        mean_delta=float(abs(a.mean() - b.mean())),
    )


def run_to_run_noise(
    first: Mapping[str, ArrayLike], second: Mapping[str, ArrayLike]
) -> dict[str, MetricNoise]:
    """Per metric present in both runs: their :class:`MetricNoise` (arrays aligned per image)."""
    return {m: metric_noise(m, first[m], second[m]) for m in first if m in second}


def delta_within_noise(delta: float, noise_levels: Iterable[float | None]) -> bool | None:
    """Whether |delta| is no larger than the combined noise of the runs involved.

    ``noise_levels``: each run's noise level for this metric (e.g. ``mean_delta`` of its
    reproduction); the combined level is their sum (the difference of two noisy numbers can move
    by both noises). ``None`` when any level is unknown (that run was never reproduced) or the
    delta is NaN: the caller then says "noise not measured" instead of guessing.
    """
    levels = list(noise_levels)
    if not levels or any(v is None or math.isnan(v) for v in levels) or math.isnan(delta):
        return None
    return abs(delta) <= sum(float(v) for v in levels if v is not None) + NOISE_EPS
