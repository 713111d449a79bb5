"""Paired per-image deltas of every metric, all metrics from ONE shared bootstrap draw of images.

Definitions:
- delta = candidate - baseline, per image and for the mean (the mean of per-image differences, so
  two identical runs give delta 0 and the interval [0, 0] exactly).
- "Better" is oriented per metric: for a lower-is-better metric (MAE) an improvement is a negative
  delta. `improved` / `regressed` = share of images better / worse by more than `margin`.
- Intervals: percentile bootstrap over images (pipelines.stats.bootstrap), one draw of image indices
  per round shared by both runs and every metric.
- `p_noninferior(threshold)`: one-sided bootstrap p-value of "the oriented delta is <= threshold"
  (share of rounds at or below it, with the +1 correction so it is never 0). A release gate passes
  when this p-value, Holm-adjusted across the gates of a report, is at most alpha.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from pipelines.metrics.registry import lower_is_better as registry_lower
from pipelines.stats.bootstrap import (
    DEFAULT_LEVEL,
    DEFAULT_ROUNDS,
    FloatArray,
    Seed,
    bootstrap_mean_samples,
    paired_columns,
    percentile_interval,
)


def one_sided_p(samples: FloatArray, threshold: float) -> float:
    """Bootstrap p-value of H0 "statistic <= threshold" from its (oriented) bootstrap samples."""
    s = np.asarray(samples, dtype=np.float64)
    return float((1 + np.count_nonzero(s <= threshold)) / (len(s) + 1))


@dataclass(frozen=True)
class MetricDelta:
    """One metric of a paired comparison; `samples` are the bootstrap deltas (not serialised)."""

    metric: str
    n: int
    baseline: float
    candidate: float
    delta: float
    low: float
    high: float
    improved: float
    regressed: float
    lower_is_better: bool
    samples: FloatArray = field(repr=False, compare=False)

    @property
    def sign(self) -> float:
        return -1.0 if self.lower_is_better else 1.0

    def p_noninferior(self, margin: float) -> float:
        """p-value of "candidate is worse by more than `margin`" (oriented, one-sided)."""
        return one_sided_p(self.sign * self.samples, -margin)

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "delta": self.delta,
            "ci": [self.low, self.high],
            "improved": self.improved,
            "regressed": self.regressed,
            "lower_is_better": self.lower_is_better,
        }


def paired_samples(
    baseline: FloatArray, candidate: FloatArray, *, rounds: int, seed: Seed
) -> FloatArray:
    """Bootstrap means ``(rounds, 3m)`` of [baseline | candidate | candidate - baseline] columns,
    from one draw of units per round (the same draw as `pipelines.stats.paired_bootstrap`)."""
    return bootstrap_mean_samples(
        np.hstack([baseline, candidate, candidate - baseline]), rounds=rounds, seed=seed
    )


def paired_deltas(
    baseline: Mapping[str, ArrayLike],
    candidate: Mapping[str, ArrayLike],
    *,
    margin: float = 0.0,
    lower_is_better: Collection[str] | None = None,
    rounds: int = DEFAULT_ROUNDS,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
) -> dict[str, MetricDelta]:
    """Paired deltas of every metric (``baseline[m][i]`` and ``candidate[m][i]`` = image ``i``)."""
    names, base, cand = paired_columns(baseline, candidate)
    lower_set = registry_lower() if lower_is_better is None else lower_is_better
    m = len(names)
    samples = paired_samples(base, cand, rounds=rounds, seed=seed)
    bounds = percentile_interval(samples, level)
    diff = cand - base
    out = {}
    for k, name in enumerate(names):
        lower = name in lower_set
        oriented = -diff[:, k] if lower else diff[:, k]
        out[name] = MetricDelta(
            metric=name,
            n=int(base.shape[0]),
            baseline=float(base[:, k].mean()),
            candidate=float(cand[:, k].mean()),
            delta=float(diff[:, k].mean()),
            low=float(bounds[0, 2 * m + k]),
            high=float(bounds[1, 2 * m + k]),
            improved=float(np.mean(oriented > margin)),
            regressed=float(np.mean(oriented < -margin)),
            lower_is_better=lower,
            samples=samples[:, 2 * m + k].copy(),
        )
    return out
