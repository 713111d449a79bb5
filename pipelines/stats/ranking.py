"""Leaderboard uncertainty: an interval per metric cell and a rank interval per version.

Definitions (the bootstrap conventions of pipelines.stats.bootstrap):

- Cell interval: percentile bootstrap interval of the mean over the run's images, every metric of
  the run from one shared draw of its images (`bootstrap_means`), seeded.
- Rank interval: the versions ranked on one set version were all run on the same images, so they
  are compared on the images every one of them scored, with ONE draw of image indices per round
  shared by all versions (paired). Version ``j`` is ranked above version ``i`` when ``j`` beats
  ``i`` (oriented: for a lower-is-better metric smaller wins) in the bootstrap, i.e. the lower
  bound of the percentile interval of the paired difference ``j - i`` is above 0. Then
  ``rank_low = 1 + (versions ranked above)`` and ``rank_high = n - (versions ranked below)``:
  versions whose difference is not resolved share a rank range ("1–2"), a version that beats every
  other one gets "1–1". The point rank is 1 + the number of versions with a better mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .bootstrap import (
    DEFAULT_LEVEL,
    DEFAULT_ROUNDS,
    Seed,
    bootstrap_mean_samples,
)


@dataclass(frozen=True)
class RankInterval:
    """Point rank (1 = best) and its interval over bootstrap rounds, on `n` shared images."""

    rank: int
    low: int
    high: int
    n: int

    def text(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}–{self.high}"


def rank_intervals(
    values: ArrayLike,
    *,
    lower_is_better: bool = False,
    rounds: int = DEFAULT_ROUNDS,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
) -> list[RankInterval]:
    """Rank intervals of the versions in the columns of ``values`` (images x versions, paired:
    row ``i`` is the same image for every version). See the module docstring for the rule."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"values must be images x versions, got shape {arr.shape}")
    n, k = arr.shape
    sign = -1.0 if lower_is_better else 1.0
    oriented = sign * arr
    means = oriented.mean(axis=0)
    if k == 1:
        return [RankInterval(1, 1, 1, n)]
    # One shared draw of images per round for every version (the columns of one matrix).
    samples = bootstrap_mean_samples(oriented, rounds=rounds, seed=seed).reshape(rounds, k)
    tail = (1.0 - level) / 2.0
    above = np.zeros((k, k), dtype=bool)  # above[j, i]: j is ranked above i
    for i in range(k):
        # Lower percentile bound of (j - i) for every j, from the same rounds.
        lows = np.quantile(samples - samples[:, [i]], tail, axis=0)
        above[:, i] = lows > 0
        above[i, i] = False
    out = []
    for i in range(k):
        rank = 1 + int(np.count_nonzero(means > means[i]))
        low = 1 + int(np.count_nonzero(above[:, i]))
        high = k - int(np.count_nonzero(above[i, :]))
        out.append(RankInterval(rank, min(low, rank), max(high, rank), n))
    return out
