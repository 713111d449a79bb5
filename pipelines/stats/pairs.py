"""Pairwise crowd votes as per-item count tensors, and win/tie/loss/both-bad rates with CIs.

Conventions:

- A vote compares two models (runs) ``a`` (shown left) and ``b`` (shown right) on one rated item and
  is one of ``left``, ``right``, ``tie``, ``both_bad`` (codes 0-3, :data:`CHOICES`). Choices are
  mapped to model identities here: ``left`` means ``a`` beat ``b``.
- Per item ``t`` the counts are three ``K x K`` matrices: ``wins[t, i, j]`` = votes where ``i`` beat
  ``j``; ``ties[t, i, j]`` and ``both_bad[t, i, j]`` = tie / both-bad votes between ``i`` and ``j``,
  stored symmetrically (the vote is counted at ``[i, j]`` and at ``[j, i]``).
- They are held as one sparse matrix of shape ``(n_items, 3 K^2)`` (blocks wins | ties | both_bad,
  row-major ``i * K + j`` inside a block): a campaign rates each item on a few pairs only, and a
  bootstrap round is the weighted sum of item rows, ``counts @ matrix`` (see ``bootstrap``).
- Rates for the ordered pair ``(i, j)``: win = wins[i, j] / n, loss = wins[j, i] / n, tie =
  ties[i, j] / n, both_bad = both_bad[i, j] / n with n = all votes between ``i`` and ``j``; the four
  sum to 1. Their intervals resample rated items with all their votes (percentile bootstrap);
  :func:`wilson_interval` is for a single proportion of independent trials (e.g. gold accuracy).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm

from .bootstrap import (
    DEFAULT_LEVEL,
    DEFAULT_ROUNDS,
    FloatArray,
    Interval,
    Seed,
    iter_count_chunks,
)

CHOICES = ("left", "right", "tie", "both_bad")
LEFT, RIGHT, TIE, BOTH_BAD = range(4)


def choice_codes(choices: ArrayLike) -> NDArray[np.int64]:
    """Integer codes 0-3 for choices given as codes or as the strings in :data:`CHOICES`."""
    arr = np.asarray(choices)
    if arr.dtype.kind in "iu":
        codes = arr.astype(np.int64)
    else:
        lookup = {name: k for k, name in enumerate(CHOICES)}
        try:
            codes = np.array([lookup[str(c)] for c in arr.ravel()], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"unknown choice {exc.args[0]!r}; expected one of {CHOICES}") from None
    if codes.size and (codes.min() < 0 or codes.max() > 3):
        raise ValueError(f"choice codes must be 0-3 ({', '.join(CHOICES)})")
    return codes.reshape(arr.shape)


@dataclass(frozen=True)
class ItemPairCounts:
    """Per-item vote counts, logically ``(n_items, 3, K, K)``, stored sparse ``(n_items, 3K^2)``."""

    matrix: sp.csr_matrix
    n_models: int
    item_labels: NDArray[Any]

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[0])

    @classmethod
    def from_votes(
        cls,
        items: ArrayLike,
        model_a: ArrayLike,
        model_b: ArrayLike,
        choices: ArrayLike,
        n_models: int,
    ) -> ItemPairCounts:
        """Counts from one row per vote: item label, left model, right model (0..K-1), choice."""
        return cls.from_counts(items, model_a, model_b, choices, None, n_models=n_models)

    @classmethod
    def from_counts(
        cls,
        items: ArrayLike,
        model_a: ArrayLike,
        model_b: ArrayLike,
        choices: ArrayLike,
        counts: ArrayLike | None,
        *,
        n_models: int,
    ) -> ItemPairCounts:
        """Counts from aggregated rows: (item, model a, model b, choice) and how many such votes
        (``counts``; ``None`` = one vote per row). A database ``GROUP BY`` feeds this directly."""
        labels, item_idx = np.unique(np.asarray(items), return_inverse=True)
        item_idx = item_idx.reshape(-1)
        a = np.asarray(model_a, dtype=np.int64)
        b = np.asarray(model_b, dtype=np.int64)
        code = choice_codes(choices)
        weight = (
            np.ones(len(code))
            if counts is None
            else np.asarray(counts, dtype=np.float64).reshape(-1)
        )
        if not (a.shape == b.shape == code.shape == item_idx.shape == weight.shape):
            raise ValueError("items, model_a, model_b, choices and counts need one entry per row")
        if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n_models):
            raise ValueError(f"model indices must be in 0..{n_models - 1}")
        if np.any(a == b):
            raise ValueError(f"vote {int(np.flatnonzero(a == b)[0])} compares a model with itself")
        k2 = n_models * n_models
        winner = np.where(code == RIGHT, b, a)
        loser = np.where(code == RIGHT, a, b)
        block = np.where(code <= RIGHT, 0, code - 1)  # wins | ties | both_bad
        cols = block * k2 + winner * n_models + loser
        sym = code >= TIE  # ties and both-bad also count at [j, i]
        rows = np.concatenate([item_idx, item_idx[sym]])
        cols = np.concatenate([cols, (block * k2 + loser * n_models + winner)[sym]])
        data = np.concatenate([weight, weight[sym]])
        matrix = sp.csr_matrix((data, (rows, cols)), shape=(len(labels), 3 * k2))
        matrix.sum_duplicates()
        return cls(matrix, n_models, labels)

    @classmethod
    def from_dense(
        cls, wins: ArrayLike, ties: ArrayLike | None = None, both_bad: ArrayLike | None = None
    ) -> ItemPairCounts:
        """Counts from dense ``(n_items, K, K)`` tensors (ties/both-bad symmetric or upper only)."""
        w = np.asarray(wins, dtype=np.float64)
        if w.ndim != 3 or w.shape[1] != w.shape[2]:
            raise ValueError(f"wins must have shape (n_items, K, K), got {w.shape}")

        def sym(x: ArrayLike | None) -> FloatArray:
            if x is None:
                return np.zeros_like(w)
            arr = np.asarray(x, dtype=np.float64)
            # An upper-triangular tensor is mirrored; a symmetric one is kept as is.
            return arr if np.allclose(arr, arr.transpose(0, 2, 1)) else arr + arr.transpose(0, 2, 1)

        stacked = np.concatenate(
            [
                w.reshape(len(w), -1),
                sym(ties).reshape(len(w), -1),
                sym(both_bad).reshape(len(w), -1),
            ],
            axis=1,
        )
        return cls(sp.csr_matrix(stacked), w.shape[1], np.arange(len(w)))

    def aggregate(self, weights: ArrayLike | None = None) -> FloatArray:
        """Summed counts ``(3, K, K)`` (wins, ties, both_bad), optionally weighting items."""
        total = (
            np.asarray(self.matrix.sum(axis=0)).ravel()
            if weights is None
            else self.matrix.T @ np.asarray(weights, dtype=np.float64)
        )
        return np.asarray(total, dtype=np.float64).reshape(3, self.n_models, self.n_models)

    def aggregate_rounds(self, counts: FloatArray) -> FloatArray:
        """Summed counts per round ``(rounds, 3, K, K)`` from item counts ``(rounds, n_items)``."""
        total = np.asarray(self.matrix.T @ counts.T, dtype=np.float64).T
        return total.reshape(len(counts), 3, self.n_models, self.n_models)


def bt_wins(aggregated: FloatArray) -> FloatArray:
    """Bradley–Terry wins from ``(..., 3, K, K)`` counts: tie / both-bad = half a win each way."""
    return np.asarray(
        aggregated[..., 0, :, :] + 0.5 * (aggregated[..., 1, :, :] + aggregated[..., 2, :, :])
    )


def wilson_interval(successes: float, trials: float, level: float = DEFAULT_LEVEL) -> Interval:
    """Wilson score interval for one binomial proportion; ``nan`` everywhere when trials = 0."""
    if trials <= 0:
        nan = float("nan")
        return Interval(nan, nan, nan, level, 0)
    z = float(norm.ppf(0.5 + level / 2.0))
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2.0 * trials)) / denom
    half = z * np.sqrt(p * (1.0 - p) / trials + z * z / (4.0 * trials * trials)) / denom
    return Interval(
        float(p), float(max(0.0, centre - half)), float(min(1.0, centre + half)), level, 0
    )


@dataclass(frozen=True)
class PairRates:
    """Outcome rates of model ``a`` against model ``b`` (item-bootstrap intervals)."""

    a: int
    b: int
    votes: int
    items: int
    win: Interval
    tie: Interval
    loss: Interval
    both_bad: Interval

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "votes": self.votes,
            "items": self.items,
            **{k: getattr(self, k).as_dict() for k in ("win", "tie", "loss", "both_bad")},
        }


def rate_arrays(aggregated: FloatArray) -> FloatArray:
    """Rates ``(..., 4, K, K)``: win, tie, loss, both_bad of row vs column; nan if no votes."""
    wins, ties, bad = aggregated[..., 0, :, :], aggregated[..., 1, :, :], aggregated[..., 2, :, :]
    losses = np.swapaxes(wins, -1, -2)
    n = wins + losses + ties + bad
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([wins / n, ties / n, losses / n, bad / n], axis=-3)


def pair_rates(
    counts: ItemPairCounts,
    *,
    rounds: int = DEFAULT_ROUNDS,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
) -> list[PairRates]:
    """Win/tie/loss/both-bad rates for every compared pair ``a < b``, resampling rated items."""
    samples = np.concatenate(
        [
            rate_arrays(counts.aggregate_rounds(c))
            for c in iter_count_chunks(counts.n_items, rounds, seed)
        ]
    )
    return pair_rates_from_samples(counts, samples, level)


def pair_rates_from_samples(
    counts: ItemPairCounts, samples: FloatArray, level: float
) -> list[PairRates]:
    """:class:`PairRates` of each compared pair from rate samples ``(rounds, 4, K, K)``."""
    agg = counts.aggregate()
    point = rate_arrays(agg)
    n_votes = agg[0] + agg[0].T + agg[1] + agg[2]
    k = counts.n_models
    tail = (1.0 - level) / 2.0
    with warnings.catch_warnings():
        # A pair absent from every resample of a round leaves an all-NaN slice: its bounds are NaN.
        warnings.simplefilter("ignore", RuntimeWarning)
        bounds = np.nanquantile(samples, [tail, 1.0 - tail], axis=0)
    out = []
    for a in range(k):
        for b in range(a + 1, k):
            if n_votes[a, b] == 0:
                continue
            ivs = [
                Interval(
                    float(point[m, a, b]),
                    float(bounds[0, m, a, b]),
                    float(bounds[1, m, a, b]),
                    level,
                    len(samples),
                )
                for m in range(4)
            ]
            # Items carrying any vote between a and b: union over the four count cells.
            items = int(_items_with_pair(counts, a, b))
            out.append(PairRates(a, b, round(n_votes[a, b]), items, *ivs))
    return out


def _items_with_pair(counts: ItemPairCounts, a: int, b: int) -> int:
    k2 = counts.n_models**2
    cols = [blk * k2 + i * counts.n_models + j for blk in range(3) for i, j in ((a, b), (b, a))]
    sub = counts.matrix[:, cols]
    return int(np.count_nonzero(np.asarray(sub.sum(axis=1)).ravel()))
