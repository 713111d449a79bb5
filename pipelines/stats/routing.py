"""Where the next votes go: to the open pairs whose interval one more vote would shrink most.

Arms are whatever the caller routes between: the compared pairs of a campaign, or (pair, item)
cells. Each arm's state is its vote count ``n``, the sum of its vote scores and the sum of their
squares (scores as :data:`pipelines.stats.sequential.VOTE_VALUES`) and whether its sequential
decision is already made.

Priority (:func:`priorities`): the expected shrink of the arm's confidence-sequence width from one
more vote, ``s * (g(n) - g(n + 1))`` with ``g(n) = sqrt(log(1 + n) / n)`` (how the betting
sequence's width falls, :func:`pipelines.stats.sequential._width_scale`) and ``s`` the regularised
standard deviation of its scores (the paper's ``s2`` with one prior observation of variance 1/4).
This is the Chatbot Arena paper's rule (sample a pair in proportion to the fall of its interval's
width, their section 5) with the width of an anytime-valid sequence. A decided arm gets 0: it needs
no more votes. An arm without votes gets ``inf``: it is served first.

Control stratum: a share ``control_share`` of tasks ignores priorities and picks uniformly over
all arms, decided ones included, so that the headline rates (estimated from the control votes
alone, or reweighted) stay unbiased by the routing. :func:`pick` returns one arm per call
(sampling in proportion to priority, so concurrent annotators spread over the open arms);
:func:`allocate` hands out a batch greedily, counting each handed-out task as a vote.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

DEFAULT_CONTROL_SHARE = 0.1


def _scale(n: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.sqrt(np.log1p(n) / n))


def score_sd(votes: ArrayLike, sums: ArrayLike, sum_squares: ArrayLike) -> FloatArray:
    """Regularised standard deviation of each arm's scores: sqrt((1/4 + SS) / (n + 1)) with SS
    the sum of squared deviations from the mean (1/2 before any vote)."""
    n = np.asarray(votes, dtype=np.float64)
    s = np.asarray(sums, dtype=np.float64)
    q = np.asarray(sum_squares, dtype=np.float64)
    if np.any(n < 0):
        raise ValueError("vote counts must be non-negative")
    with np.errstate(divide="ignore", invalid="ignore"):
        ss = np.where(n > 0, q - s * s / np.where(n > 0, n, 1.0), 0.0)
    return np.asarray(np.sqrt((0.25 + np.maximum(ss, 0.0)) / (n + 1.0)))


def priorities(
    votes: ArrayLike, sums: ArrayLike, sum_squares: ArrayLike, decided: ArrayLike
) -> FloatArray:
    """Expected width shrink from one more vote per arm (0 when decided, ``inf`` without votes)."""
    return priorities_from_sd(votes, score_sd(votes, sums, sum_squares), decided)


def priorities_from_sd(votes: ArrayLike, sd: ArrayLike, decided: ArrayLike) -> FloatArray:
    """:func:`priorities` from vote counts and each arm's score standard deviation (e.g. the
    ``sqrt(s2)`` that :class:`pipelines.stats.sequential_online.OnlineDecisions` keeps)."""
    n = np.asarray(votes, dtype=np.float64)
    done = np.asarray(decided, dtype=bool)
    if np.any(n < 0):
        raise ValueError("vote counts must be non-negative")
    shrink = np.asarray(sd, dtype=np.float64) * (_scale(n) - _scale(n + 1.0))
    out = np.where(n > 0, shrink, np.inf)
    return np.asarray(np.where(done, 0.0, out))


@dataclass(frozen=True)
class Pick:
    """One routed task: the arm's index and whether it came from the uniform control stratum."""

    arm: int
    control: bool


def pick(
    priority: ArrayLike,
    rng: np.random.Generator,
    *,
    control_share: float = DEFAULT_CONTROL_SHARE,
) -> Pick | None:
    """One arm: uniform over all arms with probability ``control_share``, else in proportion to
    ``priority`` (arms at ``inf`` first, uniformly among them). ``None`` when every arm is decided
    and the draw was not a control task (the campaign needs no more routed votes)."""
    pr = np.asarray(priority, dtype=np.float64).reshape(-1)
    if not 0.0 <= control_share <= 1.0:
        raise ValueError("control_share must be in [0, 1]")
    if len(pr) == 0:
        return None
    if np.any(np.isnan(pr)) or np.any(pr < 0):
        raise ValueError("priorities must be non-negative")
    if rng.random() < control_share:
        return Pick(int(rng.integers(len(pr))), True)
    inf = np.isinf(pr)
    if inf.any():
        return Pick(int(rng.choice(np.flatnonzero(inf))), False)
    total = pr.sum()
    if total <= 0:
        return None
    return Pick(int(rng.choice(len(pr), p=pr / total)), False)


def allocate(
    votes: ArrayLike,
    sums: ArrayLike,
    sum_squares: ArrayLike,
    decided: ArrayLike,
    n_tasks: int,
    rng: np.random.Generator,
    *,
    control_share: float = DEFAULT_CONTROL_SHARE,
) -> tuple[IntArray, NDArray[np.bool_]]:
    """A batch of ``n_tasks`` arms: control tasks uniform, the others one at a time to the arm of
    highest priority, each assignment counted as one more vote with the arm's current spread
    (ties broken at random). Returns (arm per task, control flag per task); shorter than ``n_tasks``
    when every arm is decided."""
    n = np.asarray(votes, dtype=np.float64).copy()
    # A handed-out task is not a vote yet: it adds to the count, the spread estimate stays.
    sd = score_sd(n, sums, sum_squares)
    done = np.asarray(decided, dtype=bool)
    arms: list[int] = []
    control: list[bool] = []
    for _ in range(int(n_tasks)):
        if rng.random() < control_share:
            arm, is_control = int(rng.integers(len(n))), True
        else:
            pr = priorities_from_sd(n, sd, done)
            best = pr.max() if len(pr) else 0.0
            if best <= 0:
                continue
            arm, is_control = int(rng.choice(np.flatnonzero(pr == best))), False
        n[arm] += 1
        arms.append(arm)
        control.append(is_control)
    return np.asarray(arms, dtype=np.int64), np.asarray(control, dtype=bool)
