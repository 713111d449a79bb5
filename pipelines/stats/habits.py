"""Raters' habits: left/right preference, and raters whose votes the consensus finds improbable.

Side preference (:func:`side_preference`): over decisive votes (left or right; ties and both-bad
say nothing about a side), the share that chose the left image, with a Clopper–Pearson interval
and an exact two-sided binomial p-value against 1/2 (``scipy.stats.binomtest``), per rater and for
the crowd. Sides are randomised per task, so a share away from 1/2 is the rater's habit, not the
models'. Raters' p-values are adjusted by Benjamini–Hochberg
(``scipy.stats.false_discovery_control``).

Improbable raters (:func:`improbable_raters`), after the Chatbot Arena paper (section 5.3: per-vote
p-values under the consensus, combined per user with Fisher's method): each vote's p-value is the
consensus probability of an outcome less likely than the observed one plus a uniform share (seeded)
of the probability of outcomes exactly as likely, under the Davidson model with side term
(:mod:`pipelines.stats.bt_davidson`) fitted to all votes. The randomisation makes each p-value
exactly uniform under the consensus: the plain discrete p-value (every outcome no more likely) is
1 for the most likely outcome, and Fisher's method, fed many 1s, loses nearly all power. Fisher's
combination (``scipy.stats.combine_pvalues``) per rater, Benjamini–Hochberg across raters; raters
are flagged when their adjusted p-value is below ``alpha``: for review, never dropped here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import binomtest, combine_pvalues, false_discovery_control

from .bt_davidson import DavidsonFit, fit_davidson, side_counts
from .pairs import BOTH_BAD, LEFT, RIGHT, TIE, choice_codes

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class SidePreference:
    """Share of decisive votes for the left image, with its interval and p-value vs 1/2."""

    rater: Any  # None for the whole crowd
    decisive: int
    left: int
    share: float | None
    ci: tuple[float, float]
    p_value: float
    p_adjusted: float
    flagged: bool


def _side(rater: Any, left: int, decisive: int, level: float) -> SidePreference:
    if decisive == 0:
        return SidePreference(rater, 0, 0, None, (0.0, 1.0), 1.0, 1.0, False)
    test = binomtest(left, decisive, 0.5)
    ci = test.proportion_ci(confidence_level=level, method="exact")
    p = float(test.pvalue)
    return SidePreference(
        rater, decisive, left, left / decisive, (float(ci.low), float(ci.high)), p, p, False
    )


def side_preference(
    raters: ArrayLike, choices: ArrayLike, *, alpha: float = 0.05
) -> tuple[SidePreference, list[SidePreference]]:
    """(crowd, per rater sorted by rater) left/right preference; ``flagged`` when the
    BH-adjusted p-value (the crowd: its own p-value) is below ``alpha``."""
    r = np.asarray(raters)
    code = choice_codes(choices)
    if r.shape != code.shape:
        raise ValueError("raters and choices need one entry per vote")
    decisive = (code == LEFT) | (code == RIGHT)
    level = 1.0 - alpha
    crowd = _side(None, int((code == LEFT).sum()), int(decisive.sum()), level)
    rows = [
        _side(rater, int((code[r == rater] == LEFT).sum()), int(decisive[r == rater].sum()), level)
        for rater in np.unique(r)
    ]
    adjusted = false_discovery_control([row.p_value for row in rows]) if rows else []
    return (
        replace(crowd, flagged=crowd.p_value < alpha),
        [
            replace(row, p_adjusted=float(adj), flagged=bool(adj < alpha))
            for row, adj in zip(rows, adjusted, strict=True)
        ],
    )


def vote_p_values(
    fit: DavidsonFit,
    left: ArrayLike,
    right: ArrayLike,
    choices: ArrayLike,
    *,
    seed: int | np.random.Generator = 0,
) -> FloatArray:
    """Per vote: P(an outcome less likely than the observed) + U * P(outcomes as likely), U uniform
    (seeded), so that the p-value is uniform on [0, 1] when the vote follows the consensus."""
    code = choice_codes(choices)
    outcome = np.select(
        [code == LEFT, code == RIGHT, (code == TIE) | (code == BOTH_BAD)], [0, 1, 2]
    )
    probs = fit.probabilities(left, right)  # (n, 3)
    observed = np.take_along_axis(probs, outcome[:, None], axis=1)
    close = np.isclose(probs, observed, rtol=1e-12, atol=0.0)
    below = (probs * ((probs < observed) & ~close)).sum(axis=1)
    same = (probs * close).sum(axis=1)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return np.asarray(np.clip(below + rng.random(len(below)) * same, 0.0, 1.0))


@dataclass(frozen=True)
class RaterFit:
    """One rater's agreement with the consensus."""

    rater: Any
    votes: int
    p_value: float
    p_adjusted: float
    flagged: bool


def improbable_raters(
    raters: ArrayLike,
    left: ArrayLike,
    right: ArrayLike,
    choices: ArrayLike,
    n_models: int,
    *,
    alpha: float = 0.05,
    fit: DavidsonFit | None = None,
    seed: int = 0,
) -> tuple[DavidsonFit, list[RaterFit]]:
    """The consensus fit (given or fitted to all votes) and, per rater, Fisher's combination of
    their votes' p-values, BH-adjusted across raters; ``flagged`` below ``alpha``."""
    r = np.asarray(raters)
    consensus = fit or fit_davidson(side_counts(left, right, choices, n_models))
    p = vote_p_values(consensus, left, right, choices, seed=seed)
    names = np.unique(r)
    combined = []
    for rater in names:
        mine = p[r == rater]
        combined.append(float(combine_pvalues(mine, method="fisher").pvalue))
    adjusted = false_discovery_control(combined) if combined else []
    return consensus, [
        RaterFit(rater, int((r == rater).sum()), pv, float(adj), bool(adj < alpha))
        for rater, pv, adj in zip(names, combined, adjusted, strict=True)
    ]
