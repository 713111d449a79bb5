"""Campaign statistics from one table of votes — pure numpy over `pipelines.stats`, no Django.

Why a plain table: the same code scores a real campaign (built from the database by
`ratings.selectors`) and a simulated one (`pipelines.stats.simulate`), so the test that a random
clicker is caught by gold and that excluding him moves Bradley–Terry toward the truth exercises
exactly what the campaign page shows.

Conventions: outcomes are in run identity (0 = run a better, 1 = run b better, 2 tie, 3 both bad);
`shown` holds the same choice as it was on screen (0 left, 1 right, 2, 3), which QC needs for left
bias; `gold` is the right answer as shown (0 left / 1 right) or -1. Gold votes never enter scores,
agreement or divergence lists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipelines.stats import (
    BTReport,
    ItemPairCounts,
    bradley_terry,
    dawid_skene,
    equal_rater_items,
    fleiss_kappa,
    krippendorff_alpha,
    ratings_to_table,
)
from pipelines.stats.qc import AnnotatorQC, annotator_qc, flagged_annotators, keep_mask
from pipelines.stats.simulate import SimulatedVotes

GOLD = "gold"
#: Bootstrap rounds on the campaign page: 1000 percentile rounds (the stats library's default)
#: take well under a second for campaign-sized data (bench/bradley_terry.py: 1M votes in < 10 s).
ROUNDS = 1000


@dataclass(frozen=True)
class Votes:
    """One row per rating, in submission order."""

    items: NDArray[Any]
    tasks: NDArray[np.int64]
    run_a: NDArray[np.int64]
    run_b: NDArray[np.int64]
    outcome: NDArray[np.int64]
    shown: NDArray[np.int64]
    annotators: NDArray[np.str_]
    seconds: NDArray[np.float64]
    gold: NDArray[np.int64]
    stratum: NDArray[np.str_]

    def __len__(self) -> int:
        return len(self.tasks)

    def select(self, mask: ArrayLike) -> Votes:
        keep = np.asarray(mask, dtype=bool)
        return Votes(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    @classmethod
    def empty(cls) -> Votes:
        i = np.zeros(0, np.int64)
        return cls(np.zeros(0), i, i, i, i, i, np.zeros(0, str), np.zeros(0), i, np.zeros(0, str))

    @classmethod
    def from_simulation(cls, sim: SimulatedVotes) -> Votes:
        """A simulated campaign, model a shown left; items labelled gold-* are gold tasks."""
        _, tasks = np.unique(sim.items, return_inverse=True)
        gold = np.asarray(sim.gold, np.int64)
        return cls(
            items=np.asarray(sim.items), tasks=tasks.astype(np.int64),
            run_a=sim.model_a, run_b=sim.model_b, outcome=sim.choices, shown=sim.choices,
            annotators=np.asarray(sim.annotators).astype(str), seconds=sim.seconds, gold=gold,
            stratum=np.where(gold >= 0, GOLD, "control"),
        )  # fmt: skip


def qc(votes: Votes, *, threshold: float, min_gold: int) -> list[AnnotatorQC]:
    """Per-annotator gold accuracy, time, left bias and straight-lining (pipelines.stats.qc)."""
    if not len(votes):
        return []
    return annotator_qc(
        votes.annotators, votes.shown, votes.seconds,
        np.where(votes.gold >= 0, votes.gold, -1), threshold=threshold, min_gold=min_gold,
    )  # fmt: skip


def scored(votes: Votes, excluded: set[str] | frozenset[str] = frozenset()) -> Votes:
    """The votes that count for scores: not gold, not from an excluded annotator."""
    return votes.select((votes.stratum != GOLD) & keep_mask(votes.annotators, set(excluded)))


def excluded_annotators(rows: list[AnnotatorQC]) -> set[str]:
    return flagged_annotators(rows)


def bt(
    votes: Votes, names: list[str], *, reference: int, rounds: int = ROUNDS, seed: int = 0
) -> BTReport | None:
    """Bradley–Terry strengths ± CI (anchored at `reference` = 0), from non-gold votes."""
    votes = votes.select(votes.stratum != GOLD)
    if not len(votes):
        return None
    counts = ItemPairCounts.from_votes(
        votes.items, votes.run_a, votes.run_b, votes.outcome, n_models=len(names)
    )
    return bradley_terry(counts, names, reference=reference, rounds=rounds, seed=seed)


@dataclass(frozen=True)
class Agreement:
    alpha: float
    kappa: float
    kappa_items: int
    units: int
    level: str

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in self.__dict__.items()}  # fmt: skip


def agreement(
    votes: Votes, *, level: str = "nominal", values: ArrayLike | None = None
) -> Agreement:
    """Krippendorff's α over tasks (missing ratings allowed) and Fleiss' κ on the tasks rated by
    the most common number of raters; `values` overrides outcomes (absolute mode: 1–5 scores)."""
    votes_v = np.asarray(votes.outcome if values is None else values, dtype=np.float64)
    keep = votes.stratum != GOLD
    tasks, who, vals = votes.tasks[keep], votes.annotators[keep], votes_v[keep]
    if not len(tasks):
        return Agreement(float("nan"), float("nan"), 0, 0, level)
    unit_ids, unit = np.unique(tasks, return_inverse=True)
    _, rater = np.unique(who, return_inverse=True)
    matrix = np.full((rater.max() + 1, len(unit_ids)), np.nan)
    matrix[rater, unit] = vals
    alpha = krippendorff_alpha(matrix, level=level)  # type: ignore[arg-type]
    kappa, n_kappa = float("nan"), 0
    if level == "nominal":
        table = ratings_to_table(matrix.T, 4)
        mask = equal_rater_items(table)
        n_kappa = int(mask.sum())
        if n_kappa:
            kappa = fleiss_kappa(table[mask])
    return Agreement(alpha, kappa, n_kappa, len(unit_ids), level)


def dawid_skene_accuracy(votes: Votes) -> dict[str, float]:
    """Per-annotator accuracy from Dawid–Skene EM over non-gold tasks (optional weights; shown
    beside gold accuracy because it needs no gold, only overlap between annotators)."""
    votes = votes.select(votes.stratum != GOLD)
    if len(votes) < 2:
        return {}
    unit_ids, unit = np.unique(votes.tasks, return_inverse=True)
    names, rater = np.unique(votes.annotators, return_inverse=True)
    labels = np.full((len(unit_ids), len(names)), -1, dtype=np.int64)
    labels[unit, rater] = votes.outcome
    result = dawid_skene(labels, 4)
    return {str(n): float(a) for n, a in zip(names, result.accuracy, strict=True)}


def human_disagreement(votes: Votes, limit: int = 20) -> list[dict[str, Any]]:
    """Tasks whose raters disagree most: 1 − share of the modal outcome (≥ 2 votes, no gold)."""
    votes = votes.select(votes.stratum != GOLD)
    rows = []
    for task in np.unique(votes.tasks):
        out = votes.outcome[votes.tasks == task]
        if len(out) < 2:
            continue
        counts = np.bincount(out, minlength=4)
        rows.append({"task": int(task), "votes": len(out), "counts": counts.tolist(),
                     "disagreement": 1.0 - counts.max() / len(out)})  # fmt: skip
    rows.sort(key=lambda r: (-r["disagreement"], -r["votes"], r["task"]))
    return rows[:limit]


def metric_divergence(
    votes: Votes, iou: dict[int, tuple[float | None, float | None]], limit: int = 20
) -> list[dict[str, Any]]:
    """Tasks where humans and IoU disagree most.

    Human preference h = (a wins − b wins) / votes in [−1, 1]; metric delta d = IoU(a) − IoU(b).
    Divergence = −h·d: positive when humans prefer the run IoU ranks lower, larger when both are
    clear. Ties and both-bad votes pull h toward 0.
    """
    votes = votes.select(votes.stratum != GOLD)
    rows = []
    for task in np.unique(votes.tasks):
        ia, ib = iou.get(int(task), (None, None))
        if ia is None or ib is None:
            continue
        out = votes.outcome[votes.tasks == task]
        h = (np.sum(out == 0) - np.sum(out == 1)) / len(out)
        d = ia - ib
        rows.append({"task": int(task), "votes": len(out), "human": float(h), "iou_delta": d,
                     "divergence": float(-h * d)})  # fmt: skip
    rows.sort(key=lambda r: (-r["divergence"], r["task"]))
    return [r for r in rows if r["divergence"] > 0][:limit]


def reason_counts(reasons: list[list[str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for tags in reasons:
        for tag in tags:
            out[tag] = out.get(tag, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
