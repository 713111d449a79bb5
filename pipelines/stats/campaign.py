"""Crowd-campaign statistics from aggregated vote counts — one table per campaign, no rows.

A campaign report needs, per rated task, how many votes each outcome got: that is what a database
``GROUP BY task, outcome`` returns, so a campaign of a million ratings arrives here as a few
hundred thousand small count rows and never as a million Python objects. The same table is built
from a simulated campaign (:meth:`TaskTable.from_votes`), so the tests that gold catches random
clickers exercise exactly the code the campaign page's snapshot comes from.

Conventions: pairwise outcomes are in run identity, codes 0 = run a better, 1 = run b better,
2 tie, 3 both bad (the codes of :mod:`pipelines.stats.pairs`, with a = left); absolute-mode
columns are the scores 1–5. Gold tasks never enter a table (they check annotators, never runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .agreement import (
    NO_LABELS,
    equal_rater_items,
    fleiss_kappa,
    krippendorff_alpha_from_counts,
    not_measurable_reason,
)
from .bootstrap import DEFAULT_ROUNDS, Interval, bootstrap_mean
from .bradley_terry import BTReport, bradley_terry
from .pairs import BOTH_BAD, ItemPairCounts

PAIRWISE_VALUES = (0, 1, 2, 3)
ABSOLUTE_VALUES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class TaskTable:
    """One row per rated task: its item, runs (indices 0..K-1; ``run_b`` = -1 in absolute mode),
    stratum, and ``counts[task, v]`` = votes with value ``values[v]``."""

    task: NDArray[np.int64]
    item: NDArray[np.int64]
    run_a: NDArray[np.int64]
    run_b: NDArray[np.int64]
    stratum: NDArray[np.str_]
    counts: NDArray[np.float64]
    values: tuple[int, ...] = PAIRWISE_VALUES

    def __len__(self) -> int:
        return len(self.task)

    @property
    def votes(self) -> NDArray[np.float64]:
        return np.asarray(self.counts.sum(axis=1))

    def select(self, mask: ArrayLike) -> TaskTable:
        keep = np.asarray(mask, dtype=bool)
        return TaskTable(
            self.task[keep],
            self.item[keep],
            self.run_a[keep],
            self.run_b[keep],
            self.stratum[keep],
            self.counts[keep],
            self.values,
        )

    def in_stratum(self, stratum: str | None) -> TaskTable:
        """The tasks of one stratum (``None``: all of them)."""
        return self if stratum is None else self.select(self.stratum == stratum)

    def minus(self, other: TaskTable) -> TaskTable:
        """These counts less ``other``'s on the same tasks (e.g. all votes less a group's)."""
        order = np.argsort(self.task, kind="stable")
        rows = order[np.searchsorted(self.task[order], other.task)]
        counts = self.counts.copy()
        np.subtract.at(counts, rows, other.counts)
        if np.any(counts < 0):
            raise ValueError("cannot remove more votes than a task has")
        return TaskTable(
            self.task, self.item, self.run_a, self.run_b, self.stratum, counts, self.values
        )

    @classmethod
    def from_counts(
        cls,
        *,
        task: ArrayLike,
        item: ArrayLike,
        run_a: ArrayLike,
        run_b: ArrayLike,
        stratum: ArrayLike,
        vote_task: ArrayLike,
        vote_value: ArrayLike,
        vote_count: ArrayLike,
        values: tuple[int, ...] = PAIRWISE_VALUES,
    ) -> TaskTable:
        """The table of the tasks ``task`` (with their attributes) from aggregated vote rows
        (task id, value, count); tasks without votes keep zero counts; a vote on a task not in
        ``task`` is an error."""
        t = np.asarray(task, dtype=np.int64)
        order = np.argsort(t, kind="stable")
        t_sorted = t[order]
        vt = np.asarray(vote_task, dtype=np.int64)
        pos = np.searchsorted(t_sorted, vt)
        found = pos < len(t)
        if vt.size and (not found.all() or np.any(t_sorted[pos] != vt)):
            raise ValueError("a vote names a task that is not in the table")
        col = np.searchsorted(np.asarray(values), np.asarray(vote_value, dtype=np.int64))
        counts = np.zeros((len(t), len(values)))
        np.add.at(counts, (order[pos], col), np.asarray(vote_count, dtype=np.float64))
        return cls(
            t,
            np.asarray(item, dtype=np.int64),
            np.asarray(run_a, dtype=np.int64),
            np.asarray(run_b, dtype=np.int64),
            np.asarray(stratum).astype(str),
            counts,
            values,
        )

    @classmethod
    def from_votes(
        cls,
        *,
        task: ArrayLike,
        item: ArrayLike,
        run_a: ArrayLike,
        run_b: ArrayLike,
        stratum: ArrayLike,
        value: ArrayLike,
        values: tuple[int, ...] = PAIRWISE_VALUES,
    ) -> TaskTable:
        """The table from one row per vote (a simulation, or a test's hand-written votes)."""
        t = np.asarray(task, dtype=np.int64)
        ids, first = np.unique(t, return_index=True)
        return cls.from_counts(
            task=ids,
            item=np.asarray(item)[first],
            run_a=np.asarray(run_a)[first],
            run_b=np.asarray(run_b)[first],
            stratum=np.asarray(stratum)[first],
            vote_task=t,
            vote_value=value,
            vote_count=np.ones(len(t)),
            values=values,
        )


def pair_counts(table: TaskTable, n_models: int) -> ItemPairCounts:
    """Per-item pair counts for Bradley–Terry from a pairwise table (nonzero cells only)."""
    rows, cols = np.nonzero(table.counts)
    return ItemPairCounts.from_counts(
        table.item[rows],
        table.run_a[rows],
        table.run_b[rows],
        np.asarray(table.values, dtype=np.int64)[cols],
        table.counts[rows, cols],
        n_models=n_models,
    )


def bt(
    table: TaskTable,
    names: list[str],
    *,
    reference: int,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
) -> BTReport | None:
    """Bradley–Terry strengths ± CI anchored at ``reference`` = 0 (None without votes)."""
    if not table.counts.sum():
        return None
    return bradley_terry(
        pair_counts(table, len(names)), names, reference=reference, rounds=rounds, seed=seed
    )


@dataclass(frozen=True)
class Agreement:
    alpha: float
    kappa: float
    kappa_items: int
    units: int
    level: str
    # Why alpha/kappa are absent: "not measurable (one label per item)" when no task has two
    # ratings (agreement needs a pair), else None.
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in self.__dict__.items()
        }


def agreement(table: TaskTable, *, level: Literal["nominal", "ordinal"] = "nominal") -> Agreement:
    """Krippendorff's α over tasks (any number of raters each) and, nominal only, Fleiss' κ on
    the tasks rated by the most common number of raters."""
    rated = table.select(table.votes > 0)
    if not len(rated):
        return Agreement(float("nan"), float("nan"), 0, 0, level, NO_LABELS)
    note = not_measurable_reason(rated.votes)
    if note is not None:
        return Agreement(float("nan"), float("nan"), 0, len(rated), level, note)
    alpha = krippendorff_alpha_from_counts(rated.counts, rated.values, level)
    kappa, n_kappa = float("nan"), 0
    if level == "nominal":
        mask = equal_rater_items(rated.counts)
        n_kappa = int(mask.sum())
        if n_kappa:
            kappa = fleiss_kappa(rated.counts[mask])
    return Agreement(alpha, kappa, n_kappa, len(rated), level)


def human_disagreement(table: TaskTable, limit: int = 20) -> list[dict[str, Any]]:
    """Tasks whose raters disagree most: 1 − share of the modal outcome (tasks with ≥ 2 votes)."""
    n = table.votes
    keep = n >= 2
    if not keep.any():
        return []
    sub, n = table.select(keep), n[keep]
    score = 1.0 - sub.counts.max(axis=1) / n
    order = np.lexsort((sub.task, -n, -score))[:limit]
    return [
        {
            "task": int(sub.task[i]),
            "votes": int(n[i]),
            "counts": sub.counts[i].astype(int).tolist(),
            "disagreement": float(score[i]),
        }
        for i in order
    ]


def metric_divergence(
    table: TaskTable, iou_a: ArrayLike, iou_b: ArrayLike, limit: int = 20
) -> list[dict[str, Any]]:
    """Tasks where humans and IoU disagree most.

    Human preference h = (a wins − b wins) / votes in [−1, 1]; metric delta d = IoU(a) − IoU(b).
    Divergence = −h·d: positive when humans prefer the run IoU ranks lower, larger when both are
    clear. Ties and both-bad votes pull h toward 0. ``iou_a``/``iou_b`` align with the table's
    rows (NaN where unknown).
    """
    ia, ib = np.asarray(iou_a, dtype=np.float64), np.asarray(iou_b, dtype=np.float64)
    n = table.votes
    keep = (n > 0) & ~np.isnan(ia) & ~np.isnan(ib)
    h = (table.counts[:, 0] - table.counts[:, 1])[keep] / n[keep]
    d = (ia - ib)[keep]
    div = -h * d
    tasks, votes = table.task[keep], n[keep]
    order = [i for i in np.lexsort((tasks, -div)) if div[i] > 0][:limit]
    return [
        {
            "task": int(tasks[i]),
            "votes": int(votes[i]),
            "human": float(h[i]),
            "iou_delta": float(d[i]),
            "divergence": float(div[i]),
        }
        for i in order
    ]


def pair_outcome_counts(table: TaskTable, n_models: int) -> NDArray[np.float64]:
    """Votes per unordered pair and outcome, ``(K, K, 4)`` with the pair at ``[min, max]`` and
    outcomes oriented so index 0 = the lower-index run won."""
    out = np.zeros((n_models, n_models, len(table.values)))
    swap = table.run_a > table.run_b
    lo = np.where(swap, table.run_b, table.run_a)
    hi = np.where(swap, table.run_a, table.run_b)
    counts = table.counts.copy()
    counts[swap, 0], counts[swap, 1] = table.counts[swap, 1], table.counts[swap, 0]
    np.add.at(out, (lo, hi), counts)
    return out


def both_bad_rate(table: TaskTable) -> float | None:
    """Share of all votes that were "both bad" (None without votes)."""
    total = float(table.counts.sum())
    return float(table.counts[:, BOTH_BAD].sum()) / total if total else None


def absolute_means(
    table: TaskTable, n_models: int, *, rounds: int = DEFAULT_ROUNDS, seed: int = 0
) -> list[tuple[int, Interval | None]]:
    """Mean score 1–5 per run with a bootstrap CI over its votes: (votes, interval or None)."""
    out: list[tuple[int, Interval | None]] = []
    per_run = np.zeros((n_models, len(table.values)))
    np.add.at(per_run, table.run_a, table.counts)
    for row in per_run:
        n = int(row.sum())
        if not n:
            out.append((0, None))
            continue
        scores = np.repeat(np.asarray(table.values, dtype=np.float64), row.astype(np.int64))
        out.append((n, bootstrap_mean(scores, rounds=rounds, seed=seed)))
    return out


__all__ = [
    "ABSOLUTE_VALUES",
    "PAIRWISE_VALUES",
    "Agreement",
    "TaskTable",
    "absolute_means",
    "agreement",
    "both_bad_rate",
    "bt",
    "human_disagreement",
    "metric_divergence",
    "pair_counts",
    "pair_outcome_counts",
]
