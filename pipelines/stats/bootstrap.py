"""Seeded percentile bootstrap: over images, paired over two runs, and over clusters.

Conventions (docs/contracts/metrics.md, "Confidence intervals"):

- The resampled unit is the one that was sampled: an image for mask metrics, a rated item (with all
  its votes) for crowd scores. Single votes or pixels are never resampled on their own.
- A round draws ``n`` unit indices uniformly with replacement. Rounds are represented as a matrix of
  multinomial counts ``C`` of shape ``(rounds, n)`` (``C[r, i]`` = how often unit ``i`` was drawn in
  round ``r``; each row sums to ``n``), so the mean of every round is one matrix product
  ``C @ values / n``. Rounds are generated in chunks to bound memory; the chunking depends only on
  ``n``, so the same seed always gives the same result.
- Interval = percentile interval: the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the
  bootstrap distribution (numpy's default linear interpolation). The point estimate is the statistic
  on the original sample, not the bootstrap mean.
- Paired comparison of two runs on the same images: one draw of image indices is shared by both
  runs and by every metric; delta = candidate - baseline. Two identical runs therefore give delta 0
  and the interval [0, 0] exactly.
- ``seed`` is an int (``numpy.random.default_rng(seed)``) or a ``numpy.random.Generator``.
- Values must be finite: an image with an error is left out upstream (the metrics command lists it
  in ``errors``), never silently averaged as NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Seed = int | np.random.Generator

DEFAULT_ROUNDS = 1000
DEFAULT_LEVEL = 0.95
# Cap on the elements of one chunk of the (rounds, n) count matrix: 4e6 float64 = 32 MB, small next
# to the workers' memory (measured: a 1000-round bootstrap of the mean over 10 000 images takes
# ~0.2 s on 2 shared cores, most of it drawing the 1e7 indices).
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval."""

    estimate: float
    low: float
    high: float
    level: float
    rounds: int

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class PairedDelta:
    """Paired comparison of one metric: both runs' means and delta = candidate - baseline."""

    baseline: Interval
    candidate: Interval
    delta: Interval
    # Share of rounds with delta > 0 (a descriptive bootstrap probability, not a p-value).
    share_positive: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline.as_dict(),
            "candidate": self.candidate.as_dict(),
            "delta": self.delta.as_dict(),
            "share_positive": self.share_positive,
        }


def rng_from(seed: Seed) -> np.random.Generator:
    """The generator for ``seed`` (an int seed or an existing generator, used as is)."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def percentile_interval(samples: ArrayLike, level: float = DEFAULT_LEVEL) -> FloatArray:
    """Quantiles ``(1-level)/2`` and ``(1+level)/2`` along axis 0; shape ``(2, ...)``."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    arr = np.asarray(samples, dtype=np.float64)
    tail = (1.0 - level) / 2.0
    return np.asarray(np.quantile(arr, [tail, 1.0 - tail], axis=0), dtype=np.float64)


def chunk_sizes(n: int, rounds: int) -> list[int]:
    """Rounds per chunk so that one chunk of the ``(rounds, n)`` count matrix stays bounded."""
    per = max(1, _CHUNK_ELEMENTS // max(n, 1))
    return [min(per, rounds - start) for start in range(0, rounds, per)]


def resample_indices(n: int, rounds: int, rng: np.random.Generator) -> IntArray:
    """Index matrix ``(rounds, n)``: each row draws ``n`` of ``range(n)`` with replacement."""
    # 32-bit draws are ~5x faster than 64-bit ones and n (images, items) is far below 2**31.
    return rng.integers(0, n, size=(rounds, n), dtype=np.int32).astype(np.int64, copy=False)


def counts_from_indices(indices: IntArray, n: int) -> FloatArray:
    """Multinomial count matrix ``(rounds, n)`` from an index matrix ``(rounds, m)``."""
    rounds = indices.shape[0]
    offsets = (np.arange(rounds, dtype=np.int64) * n)[:, None]
    flat = np.bincount((indices + offsets).ravel(), minlength=rounds * n)
    return flat.reshape(rounds, n).astype(np.float64)


def iter_count_chunks(n: int, rounds: int, seed: Seed) -> Iterator[FloatArray]:
    """Yield multinomial count matrices whose rows are bootstrap rounds over ``n`` units."""
    if n < 1:
        raise ValueError("the bootstrap needs at least one unit")
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    rng = rng_from(seed)
    for size in chunk_sizes(n, rounds):
        yield counts_from_indices(resample_indices(n, size, rng), n)


def _finite_matrix(values: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D (units) or 2-D (units x metrics), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: nothing to bootstrap")
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).reshape(arr.shape[0], -1).all(axis=1))[0])
        raise ValueError(f"{name} has a non-finite value at unit {bad}; drop failed units first")
    return arr


def _interval(point: float, samples: ArrayLike, level: float, rounds: int) -> Interval:
    """`point` with the percentile interval of its bootstrap `samples`."""
    low, high = percentile_interval(samples, level)
    return Interval(float(point), float(low), float(high), level, rounds)


def bootstrap_mean_samples(
    values: ArrayLike, *, rounds: int = DEFAULT_ROUNDS, seed: Seed = 0
) -> FloatArray:
    """Bootstrap distribution of the mean: shape ``(rounds,)`` or ``(rounds, metrics)``."""
    arr = _finite_matrix(values, "values")
    n = arr.shape[0]
    mat = arr.reshape(n, -1)
    out = np.concatenate([c @ mat for c in iter_count_chunks(n, rounds, seed)]) / n
    return out.reshape((rounds, *arr.shape[1:]))


def bootstrap_mean(
    values: ArrayLike, *, rounds: int = DEFAULT_ROUNDS, level: float = DEFAULT_LEVEL, seed: Seed = 0
) -> Interval:
    """Mean of per-unit ``values`` (1-D, one per image) with its percentile bootstrap interval."""
    arr = _finite_matrix(values, "values")
    if arr.ndim != 1:
        raise ValueError("bootstrap_mean takes one value per unit; use bootstrap_means for columns")
    samples = bootstrap_mean_samples(arr, rounds=rounds, seed=seed)
    return _interval(arr.mean(), samples, level, rounds)


def bootstrap_means(
    columns: Mapping[str, ArrayLike],
    *,
    rounds: int = DEFAULT_ROUNDS,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
) -> dict[str, Interval]:
    """Means of several metrics over the same units, all from one shared draw of units."""
    names = list(columns)
    mat = stack_columns(columns, names)
    samples = bootstrap_mean_samples(mat, rounds=rounds, seed=seed)
    bounds = percentile_interval(samples, level)
    means = mat.mean(axis=0)
    return {
        name: Interval(float(means[k]), float(bounds[0, k]), float(bounds[1, k]), level, rounds)
        for k, name in enumerate(names)
    }


def bootstrap_statistic(
    data: ArrayLike,
    statistic: Callable[[FloatArray], float],
    *,
    rounds: int = DEFAULT_ROUNDS,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
) -> Interval:
    """Any scalar statistic of the units (rows of ``data``), e.g. ``np.median``.

    ``statistic`` receives the resampled rows ``data[idx]`` (same shape as ``data``) once per round;
    for a mean use :func:`bootstrap_mean`, which is vectorised.
    """
    arr = _finite_matrix(data, "data")
    n = arr.shape[0]
    rng = rng_from(seed)
    samples = np.empty(rounds, dtype=np.float64)
    done = 0
    for size in chunk_sizes(n, rounds):
        for row in resample_indices(n, size, rng):
            samples[done] = statistic(arr[row])
            done += 1
    return _interval(statistic(arr), samples, level, rounds)


def paired_bootstrap(
    baseline: Mapping[str, ArrayLike],
    candidate: Mapping[str, ArrayLike],
    *,
    rounds: int = DEFAULT_ROUNDS,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
) -> dict[str, PairedDelta]:
    """Paired bootstrap of mean metrics for two runs on the same images (same order).

    ``baseline[metric][i]`` and ``candidate[metric][i]`` belong to image ``i``. One draw of image
    indices per round is shared by both runs and all metrics; delta = candidate - baseline.
    """
    names, base, cand = paired_columns(baseline, candidate)
    m = len(names)
    # The delta column is computed from per-image differences, so identical runs give exact zeros.
    samples = bootstrap_mean_samples(np.hstack([base, cand, cand - base]), rounds=rounds, seed=seed)
    bounds = percentile_interval(samples, level)
    est = np.concatenate([base.mean(axis=0), cand.mean(axis=0), (cand - base).mean(axis=0)])

    def interval(col: int) -> Interval:
        return Interval(
            float(est[col]), float(bounds[0, col]), float(bounds[1, col]), level, rounds
        )

    return {
        name: PairedDelta(
            interval(k),
            interval(m + k),
            interval(2 * m + k),
            float(np.mean(samples[:, 2 * m + k] > 0)),
        )
        for k, name in enumerate(names)
    }


def paired_bootstrap_delta(
    baseline: ArrayLike,
    candidate: ArrayLike,
    *,
    rounds: int = DEFAULT_ROUNDS,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
) -> PairedDelta:
    """:func:`paired_bootstrap` for a single metric given as two per-image arrays."""
    return paired_bootstrap(
        {"m": baseline}, {"m": candidate}, rounds=rounds, level=level, seed=seed
    )["m"]


def cluster_bootstrap_mean(
    values: ArrayLike,
    clusters: ArrayLike,
    *,
    rounds: int = DEFAULT_ROUNDS,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
) -> Interval:
    """Mean over observations (e.g. votes) resampling whole clusters (e.g. rated items).

    Each round draws as many clusters as there are, with replacement; the statistic is the mean over
    all observations of the drawn clusters (a ratio: sum of drawn values / number of drawn values).
    """
    vals = _finite_matrix(values, "values")
    if vals.ndim != 1:
        raise ValueError("values must be 1-D")
    labels = np.asarray(clusters)
    if labels.shape != vals.shape:
        raise ValueError("values and clusters must have the same length")
    _, inverse = np.unique(labels, return_inverse=True)
    sums = np.bincount(inverse, weights=vals)
    sizes = np.bincount(inverse).astype(np.float64)
    ratios = [(c @ sums) / (c @ sizes) for c in iter_count_chunks(len(sums), rounds, seed)]
    return _interval(vals.mean(), np.concatenate(ratios), level, rounds)


def cluster_bootstrap(
    data: ArrayLike,
    clusters: ArrayLike,
    statistic: Callable[[FloatArray], float],
    *,
    rounds: int = DEFAULT_ROUNDS,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
) -> Interval:
    """Any scalar statistic of observation rows, resampling whole clusters with replacement.

    ``statistic`` receives the rows of the drawn clusters (a cluster drawn twice appears twice).
    """
    arr = _finite_matrix(data, "data")
    labels = np.asarray(clusters)
    if labels.shape[0] != arr.shape[0]:
        raise ValueError("data and clusters must have the same length")
    _, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(inverse))])
    members = [order[starts[c] : starts[c + 1]] for c in range(len(starts) - 1)]
    rng = rng_from(seed)
    samples = np.empty(rounds, dtype=np.float64)
    for r in range(rounds):
        drawn = rng.integers(0, len(members), size=len(members))
        samples[r] = statistic(arr[np.concatenate([members[c] for c in drawn])])
    return _interval(statistic(arr), samples, level, rounds)


def stack_columns(columns: Mapping[str, ArrayLike], names: list[str]) -> FloatArray:
    """Units x metrics matrix of the named metric columns (finite, one value per unit each)."""
    if not names:
        raise ValueError("no metrics given")
    cols = [_finite_matrix(columns[name], name) for name in names]
    lengths = {c.shape[0] for c in cols}
    if len(lengths) != 1 or any(c.ndim != 1 for c in cols):
        raise ValueError("every metric needs one value per unit, for the same units")
    return np.stack(cols, axis=1)


def paired_columns(
    baseline: Mapping[str, ArrayLike], candidate: Mapping[str, ArrayLike]
) -> tuple[list[str], FloatArray, FloatArray]:
    """(metric names, baseline matrix, candidate matrix) of two runs on the same images, one row
    per image in the same order; ValueError when the metrics or image counts differ."""
    if set(baseline) != set(candidate):
        raise ValueError(f"metrics differ: {sorted(set(baseline) ^ set(candidate))}")
    names = list(baseline)
    base = stack_columns(baseline, names)
    cand = stack_columns(candidate, names)
    if base.shape != cand.shape:
        raise ValueError(
            f"runs cover different numbers of images: {base.shape[0]} vs "
            f"{cand.shape[0]}; pair them by image first"
        )
    return names, base, cand
