"""Bradley–Terry strengths of all models (runs) of a campaign, with item-bootstrap intervals.

Model: P(i beats j) = sigmoid(theta_i - theta_j), theta on the logit scale, anchored at a reference
model (production): theta_ref = 0, so theta_i is the log-odds of i beating the reference.

Data: aggregated counts only. ``W[i, j]`` = times i beat j, where a tie and a "both bad" vote count
as half a win each way (:func:`pipelines.stats.pairs.bt_wins`); both-bad rates are reported on their
own by :mod:`pipelines.stats.pairs`. Counting a tie as half a win keeps the estimating equations
unbiased whenever P(i wins) + P(tie) / 2 = sigmoid(theta_i - theta_j) — the usual arena convention.

Fit: maximise the concave penalised log-likelihood

    l(theta) = sum_{i != j} W[i, j] log sigmoid(theta_i - theta_j) - ridge / 2 * sum_i theta_i^2

by Newton's method on the K-1 free strengths (theta_ref fixed at 0). The reduced Hessian is minus
(the comparison-graph Laplacian with weights N_ij p_ij (1 - p_ij), reference row/column removed)
minus ridge * I. The tiny ridge (default 1e-6, about 1e-8 logits of shrinkage at campaign sizes):
keeps the system solvable when the comparison graph is disconnected (models with no path to the
reference stay at 0 and ``connected`` is False) and keeps estimates finite under separation (a model
that never lost: the maximum-likelihood estimate is infinite; ``mle_exists`` is False and its
strength is large, of order log(votes / ridge), and meaningless). The maximum-likelihood estimate
exists iff the directed "beat at least fractionally" graph is strongly connected (Hunter 2004).
Steps are halved while the objective would decrease, so the iteration always converges; rounds of
a bootstrap are solved together as a batch of small (K-1)x(K-1) systems.

Intervals: percentile bootstrap over rated items with all their votes (multinomial item weights,
one aggregation ``counts @ item_matrix`` and one batched fit per chunk of rounds). The reference's
interval is [0, 0] by construction: the intervals are for differences to the reference.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.sparse.csgraph import connected_components

from .bootstrap import (
    DEFAULT_LEVEL,
    DEFAULT_ROUNDS,
    FloatArray,
    Interval,
    Seed,
    iter_count_chunks,
    percentile_interval,
)
from .pairs import (
    ItemPairCounts,
    PairRates,
    bt_wins,
    pair_rates_from_samples,
    rate_arrays,
)

DEFAULT_RIDGE = 1e-6
DEFAULT_TOL = 1e-10
DEFAULT_MAX_ITER = 200


@dataclass(frozen=True)
class BTFit:
    """Point estimate of the strengths (logits, ``strengths[reference] == 0``)."""

    strengths: FloatArray
    reference: int
    iterations: int
    converged: bool
    connected: bool
    mle_exists: bool
    log_likelihood: float


@dataclass(frozen=True)
class BTReport:
    """Strengths with item-bootstrap intervals, pair rates and per-model both-bad shares."""

    models: tuple[str, ...]
    reference: str
    fit: BTFit
    strengths: dict[str, Interval]
    pairs: list[PairRates]
    both_bad: dict[str, Interval]
    votes: int
    items: int

    def as_dict(self) -> dict[str, Any]:
        names = self.models
        return {
            "reference": self.reference,
            "votes": self.votes,
            "items": self.items,
            "converged": self.fit.converged,
            "connected": self.fit.connected,
            "mle_exists": self.fit.mle_exists,
            "strengths": {m: iv.as_dict() for m, iv in self.strengths.items()},
            "both_bad": {m: iv.as_dict() for m, iv in self.both_bad.items()},
            "pairs": [{**p.as_dict(), "a": names[p.a], "b": names[p.b]} for p in self.pairs],
        }


def _log_sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(-np.logaddexp(0.0, -x))


def _objective(wins: FloatArray, theta: FloatArray, ridge: float) -> FloatArray:
    diff = theta[:, :, None] - theta[:, None, :]
    return np.asarray(
        (wins * _log_sigmoid(diff)).sum(axis=(1, 2)) - 0.5 * ridge * (theta * theta).sum(axis=1)
    )


def fit_batch(
    wins: FloatArray,
    *,
    reference: int = 0,
    ridge: float = DEFAULT_RIDGE,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
) -> tuple[FloatArray, int, bool]:
    """Fit win matrices ``(R, K, K)`` at once; returns (theta ``(R, K)``, iterations, converged)."""
    w = np.asarray(wins, dtype=np.float64)
    if w.ndim != 3 or w.shape[1] != w.shape[2]:
        raise ValueError(f"win matrices must have shape (R, K, K), got {w.shape}")
    if (w < 0).any():
        raise ValueError("win counts must be non-negative")
    r, k, _ = w.shape
    if not 0 <= reference < k:
        raise ValueError(f"reference must be a model index in 0..{k - 1}")
    if ridge <= 0:
        raise ValueError("ridge must be positive (it makes the fit identifiable)")
    w = w * (1.0 - np.eye(k))
    n = w + w.transpose(0, 2, 1)
    free = np.array([i for i in range(k) if i != reference])
    theta = np.zeros((r, k))
    eye = np.eye(k - 1)
    obj = _objective(w, theta, ridge)
    for it in range(1, max_iter + 1):
        p = 1.0 / (1.0 + np.exp(theta[:, None, :] - theta[:, :, None]))  # p[r,i,j] = P(i beats j)
        grad = (w - n * p).sum(axis=2) - ridge * theta
        weight = n * p * (1.0 - p)
        lap = -weight
        lap[:, np.arange(k), np.arange(k)] = weight.sum(axis=2)
        system = lap[:, free][:, :, free] + ridge * eye
        step = np.zeros((r, k))
        step[:, free] = np.linalg.solve(system, grad[:, free, None])[..., 0]
        scale = np.ones(r)
        candidate = theta + step
        new_obj = _objective(w, candidate, ridge)
        for _ in range(40):  # step halving; a Newton step on this concave objective rarely needs it
            worse = new_obj < obj - 1e-12 * np.abs(obj)
            if not worse.any():
                break
            scale[worse] *= 0.5
            candidate[worse] = theta[worse] + scale[worse, None] * step[worse]
            new_obj[worse] = _objective(w[worse], candidate[worse], ridge)
        theta, obj = candidate, new_obj
        if np.max(np.abs(scale[:, None] * step)) < tol:
            return theta, it, True
    return theta, max_iter, False


def fit_bradley_terry(
    wins: ArrayLike,
    *,
    reference: int = 0,
    ridge: float = DEFAULT_RIDGE,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
) -> BTFit:
    """Strengths from one aggregated win matrix ``W`` (K x K, ties already split as half wins)."""
    w = np.asarray(wins, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"wins must be a square K x K matrix, got {w.shape}")
    theta, iters, converged = fit_batch(
        w[None], reference=reference, ridge=ridge, tol=tol, max_iter=max_iter
    )
    w = w * (1.0 - np.eye(len(w)))
    weak = connected_components((w + w.T) > 0, directed=False)[1]
    strong = connected_components(w > 0, directed=True, connection="strong")[0]
    diff = theta[0][:, None] - theta[0][None, :]
    return BTFit(
        strengths=theta[0],
        reference=reference,
        iterations=iters,
        converged=converged,
        connected=bool(np.all(weak == weak[reference])),
        mle_exists=bool(strong == 1),
        log_likelihood=float((w * _log_sigmoid(diff)).sum()),
    )


def bootstrap_strengths(
    counts: ItemPairCounts,
    *,
    reference: int = 0,
    rounds: int = DEFAULT_ROUNDS,
    seed: Seed = 0,
    ridge: float = DEFAULT_RIDGE,
) -> FloatArray:
    """Bootstrap strengths ``(rounds, K)`` resampling rated items with all their votes."""
    return _bootstrap(counts, reference=reference, rounds=rounds, seed=seed, ridge=ridge)[0]


def _bootstrap(
    counts: ItemPairCounts, *, reference: int, rounds: int, seed: Seed, ridge: float
) -> tuple[FloatArray, FloatArray]:
    thetas, rates = [], []
    for chunk in iter_count_chunks(counts.n_items, rounds, seed):
        agg = counts.aggregate_rounds(chunk)
        thetas.append(fit_batch(bt_wins(agg), reference=reference, ridge=ridge)[0])
        rates.append(agg)
    return np.concatenate(thetas), np.concatenate(rates)


def bradley_terry(
    counts: ItemPairCounts,
    models: Sequence[str] | None = None,
    *,
    reference: int | str = 0,
    rounds: int = DEFAULT_ROUNDS,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
    ridge: float = DEFAULT_RIDGE,
) -> BTReport:
    """Campaign scores: strengths anchored at ``reference`` with item-bootstrap intervals, win /
    tie / loss / both-bad rates per pair and both-bad share per model, all from one shared draw of
    items per round."""
    k = counts.n_models
    names = tuple(models) if models is not None else tuple(str(i) for i in range(k))
    if len(names) != k:
        raise ValueError(f"{len(names)} model names for {k} models")
    ref = names.index(reference) if isinstance(reference, str) else int(reference)
    agg = counts.aggregate()
    fit = fit_bradley_terry(bt_wins(agg), reference=ref, ridge=ridge)
    thetas, agg_rounds = _bootstrap(counts, reference=ref, rounds=rounds, seed=seed, ridge=ridge)
    bounds = percentile_interval(thetas, level)
    strengths = {
        names[i]: Interval(
            float(fit.strengths[i]), float(bounds[0, i]), float(bounds[1, i]), level, rounds
        )
        for i in range(k)
    }
    pairs = pair_rates_from_samples(counts, rate_arrays(agg_rounds), level)
    return BTReport(
        models=names,
        reference=names[ref],
        fit=fit,
        strengths=strengths,
        pairs=pairs,
        both_bad=_both_bad_shares(agg, agg_rounds, names, level),
        votes=round(_votes(agg)),
        items=counts.n_items,
    )


def _votes(agg: FloatArray) -> float:
    # Decisive votes once; tie / both-bad votes are stored at [i, j] and [j, i].
    return float(agg[0].sum() + 0.5 * (agg[1].sum() + agg[2].sum()))


def _both_bad_shares(
    agg: FloatArray, agg_rounds: FloatArray, names: tuple[str, ...], level: float
) -> dict[str, Interval]:
    """Share of each model's votes that were "both bad" (item-bootstrap interval)."""

    def shares(a: FloatArray) -> FloatArray:
        wins, ties, bad = a[..., 0, :, :], a[..., 1, :, :], a[..., 2, :, :]
        total = (wins + np.swapaxes(wins, -1, -2) + ties + bad).sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(bad.sum(axis=-1) / total)

    point = shares(agg)
    tail = (1.0 - level) / 2.0
    samples = shares(agg_rounds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a model without votes: NaN bounds
        bounds = np.nanquantile(samples, [tail, 1.0 - tail], axis=0)
    return {
        name: Interval(
            float(point[i]), float(bounds[0, i]), float(bounds[1, i]), level, len(samples)
        )
        for i, name in enumerate(names)
    }
