"""Simulated pairwise rating campaigns with known strengths (tests, bench, demo data).

Outcome model of an honest vote between models ``i`` and ``j`` with s = sigmoid(theta_i - theta_j):
P(tie or both bad) = t = 4 * tie_rate * s * (1 - s) (most likely for close models), P(i wins) =
s - t / 2, P(j wins) = 1 - s - t / 2, so P(i wins) + t / 2 = s exactly: counting ties and both-bad
as half wins estimates theta without bias (needs tie_rate <= 0.5 so that every probability is
non-negative). A share ``both_bad_share`` of the non-decisive votes are "both bad", the rest ties.

A random clicker answers left or right with probability 1/2 each, whatever is shown. Gold tasks are
items labelled ``gold-<k>`` whose right answer (left or right) is recorded in ``gold``; honest
annotators answer them correctly with probability ``honest_gold_accuracy``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .bootstrap import FloatArray, Seed, rng_from
from .pairs import BOTH_BAD, LEFT, RIGHT, TIE


@dataclass(frozen=True)
class SimulatedVotes:
    """One row per vote; ``model_a`` shown left; ``gold`` = right answer code or -1 (not gold)."""

    items: NDArray[np.str_]
    model_a: NDArray[np.int64]
    model_b: NDArray[np.int64]
    choices: NDArray[np.int64]
    annotators: NDArray[np.str_]
    seconds: FloatArray
    gold: NDArray[np.int64]

    def select(self, mask: ArrayLike) -> SimulatedVotes:
        """The votes where ``mask`` is true."""
        keep = np.asarray(mask, dtype=bool)
        return SimulatedVotes(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    def __len__(self) -> int:
        return len(self.choices)


def honest_choices(
    theta: FloatArray,
    a: NDArray[np.int64],
    b: NDArray[np.int64],
    rng: np.random.Generator,
    *,
    tie_rate: float = 0.3,
    both_bad_share: float = 0.3,
) -> NDArray[np.int64]:
    """Choice codes of honest votes between ``a`` (left) and ``b`` (right) under the model above."""
    if not 0.0 <= tie_rate <= 0.5:
        raise ValueError("tie_rate must be in [0, 0.5]")
    s = 1.0 / (1.0 + np.exp(theta[b] - theta[a]))
    t = 4.0 * tie_rate * s * (1.0 - s)
    u = rng.random(len(a))
    undecided = np.where(rng.random(len(a)) < both_bad_share, BOTH_BAD, TIE)
    return np.where(u < t, undecided, np.where(u < t + s - t / 2.0, LEFT, RIGHT)).astype(np.int64)


def simulate_campaign(
    strengths: ArrayLike,
    *,
    n_items: int,
    votes_per_item: int,
    n_honest: int,
    n_random: int = 0,
    gold_per_annotator: int = 0,
    tie_rate: float = 0.3,
    both_bad_share: float = 0.3,
    honest_gold_accuracy: float = 0.95,
    seed: Seed = 0,
) -> SimulatedVotes:
    """Votes on random pairs of models; annotators drawn uniformly for each (non-gold) vote."""
    theta = np.asarray(strengths, dtype=np.float64)
    k = len(theta)
    rng = rng_from(seed)
    n = n_items * votes_per_item
    names = np.array(
        [f"honest-{i}" for i in range(n_honest)] + [f"random-{i}" for i in range(n_random)]
    )
    who = rng.integers(0, len(names), n)
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    choice = honest_choices(theta, a, b, rng, tie_rate=tie_rate, both_bad_share=both_bad_share)
    clicker = who >= n_honest
    choice[clicker] = rng.integers(LEFT, RIGHT + 1, int(clicker.sum()))
    seconds = np.where(clicker, rng.lognormal(0.0, 0.3, n), rng.lognormal(np.log(6.0), 0.4, n))
    items = np.repeat(np.arange(n_items), votes_per_item).astype(str)
    # Gold: every annotator rates gold_per_annotator gold tasks (models 0 and 1, side random).
    g_n = gold_per_annotator * len(names)
    g_who = np.repeat(np.arange(len(names)), gold_per_annotator)
    g_answer = rng.integers(LEFT, RIGHT + 1, g_n)
    right = rng.random(g_n) < honest_gold_accuracy
    g_choice = np.where(right, g_answer, 1 - g_answer)
    g_clicker = g_who >= n_honest
    g_choice[g_clicker] = rng.integers(LEFT, RIGHT + 1, int(g_clicker.sum()))
    g_seconds = np.where(g_clicker, rng.lognormal(0.0, 0.3, g_n), rng.lognormal(1.5, 0.4, g_n))
    return SimulatedVotes(
        items=np.concatenate([items, np.array([f"gold-{i}" for i in range(g_n)], dtype=str)]),
        model_a=np.concatenate([a, np.zeros(g_n, dtype=np.int64)]),
        model_b=np.concatenate([b, np.ones(g_n, dtype=np.int64)]),
        choices=np.concatenate([choice, g_choice]).astype(np.int64),
        annotators=np.concatenate([names[who], names[g_who]]),
        seconds=np.concatenate([seconds, g_seconds]),
        gold=np.concatenate([np.full(n, -1, dtype=np.int64), g_answer]).astype(np.int64),
    )
