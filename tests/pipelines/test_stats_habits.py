"""pipelines.stats.bt_davidson and habits: side term, Davidson ties, raters' habits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import binomtest, combine_pvalues, kstest

from pipelines.stats.bt_davidson import fit_davidson, outcome_probabilities, side_counts
from pipelines.stats.habits import improbable_raters, side_preference, vote_p_values
from pipelines.stats.pairs import BOTH_BAD, LEFT, RIGHT, TIE

pytestmark = pytest.mark.no_services

TRUTH = np.array([0.0, 0.7, -0.4, 1.3])
HOME, NU = 0.3, 0.6


def simulate(rng: np.random.Generator, n: int, home: float = HOME, nu: float = NU):  # type: ignore[no-untyped-def]
    k = len(TRUTH)
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    p = outcome_probabilities(TRUTH[a], TRUTH[b], home, nu)
    u = rng.random(n)
    outcome = (u[:, None] > np.cumsum(p, axis=1)[:, :2]).sum(axis=1)
    tie_kind = np.where(rng.random(n) < 0.3, BOTH_BAD, TIE)
    choice = np.select([outcome == 0, outcome == 1], [LEFT, RIGHT], tie_kind)
    return a, b, choice


def reference_fit(a, b, choice, k):  # type: ignore[no-untyped-def]
    """The same likelihood written per vote and maximised by scipy's BFGS."""
    outcome = np.select([choice == LEFT, choice == RIGHT], [0, 1], 2)

    def nll(params: np.ndarray) -> float:
        theta = np.concatenate([[0.0], params[: k - 1]])
        p = outcome_probabilities(theta[a], theta[b], params[k - 1], np.exp(params[k]))
        return -float(np.log(p[np.arange(len(a)), outcome]).sum())

    res = minimize(nll, np.zeros(k + 1), method="BFGS", options={"gtol": 1e-8})
    return res.x, -res.fun


def test_davidson_fit_matches_scipy_and_recovers_the_truth() -> None:
    rng = np.random.default_rng(0)
    a, b, choice = simulate(rng, 20000)
    fit = fit_davidson(side_counts(a, b, choice, 4))
    assert fit.converged
    ref, ref_ll = reference_fit(a, b, choice, 4)
    np.testing.assert_allclose(fit.strengths[1:], ref[:3], atol=1e-4)
    assert fit.home == pytest.approx(ref[3], abs=1e-4)
    assert np.log(fit.tie) == pytest.approx(ref[4], abs=1e-4)
    assert fit.log_likelihood == pytest.approx(ref_ll, abs=1e-4)
    # Within 4 standard errors of the simulated truth.
    assert np.all(np.abs(fit.strengths - TRUTH) <= 4 * fit.strengths_se + 1e-12)
    assert abs(fit.home - HOME) <= 4 * fit.home_se
    assert abs(np.log(fit.tie) - np.log(NU)) <= 4 * fit.log_tie_se
    # Standard errors agree with the spread over repeated campaigns.
    homes = [
        fit_davidson(side_counts(*simulate(rng, 20000), 4)).home  # type: ignore[misc]
        for _ in range(30)
    ]
    assert np.std(homes) == pytest.approx(fit.home_se, rel=0.35)


def test_side_counts_and_bad_input() -> None:
    counts = side_counts([0, 0, 1, 2], [1, 1, 0, 1], [LEFT, TIE, RIGHT, BOTH_BAD], 3)
    assert counts[0, 0, 1] == 1 and counts[2, 0, 1] == 1 and counts[1, 1, 0] == 1
    assert counts[2, 2, 1] == 1 and counts.sum() == 4
    with pytest.raises(ValueError):
        side_counts([0], [0], [LEFT], 2)
    with pytest.raises(ValueError, match="no ties"):
        fit_davidson(side_counts([0, 1], [1, 0], [LEFT, LEFT], 2))


def test_side_preference_per_rater_and_crowd() -> None:
    rng = np.random.default_rng(1)
    raters = np.repeat(["ann", "bob", "cy"], 300)
    left_prob = np.repeat([0.5, 0.8, 0.5], 300)
    decisive = rng.random(900) < 0.8
    choice = np.where(decisive, np.where(rng.random(900) < left_prob, LEFT, RIGHT), TIE)
    crowd, rows = side_preference(raters, choice)
    assert [r.rater for r in rows] == ["ann", "bob", "cy"]
    bob = rows[1]
    ref = binomtest(bob.left, bob.decisive, 0.5)
    assert bob.p_value == pytest.approx(ref.pvalue)
    ci = ref.proportion_ci(0.95, method="exact")
    assert bob.ci == pytest.approx((ci.low, ci.high))
    assert bob.flagged and not rows[0].flagged and not rows[2].flagged
    assert crowd.decisive == int(decisive.sum()) and crowd.rater is None


def test_improbable_raters_are_flagged_not_dropped() -> None:
    rng = np.random.default_rng(2)
    a, b, choice = simulate(rng, 6000, home=0.0)
    raters = rng.choice([f"r{i}" for i in range(10)], size=6000)
    # r9 votes against the consensus: swaps left and right.
    bad = raters == "r9"
    choice = np.where(
        bad & (choice == LEFT), RIGHT, np.where(bad & (choice == RIGHT), LEFT, choice)
    )
    fit, rows = improbable_raters(raters, a, b, choice, 4)
    flagged = [r.rater for r in rows if r.flagged]
    assert flagged == ["r9"]
    assert sum(r.votes for r in rows) == 6000
    # Fisher's combination, as scipy computes it, of the per-vote p-values.
    p = vote_p_values(fit, a, b, choice)
    mine = raters == "r3"
    r3 = next(r for r in rows if r.rater == "r3")
    assert r3.p_value == pytest.approx(combine_pvalues(p[mine], method="fisher").pvalue)
    # Per-vote p-values are uniform under the consensus (votes drawn from the fitted model).
    theta = fit.strengths
    probs = outcome_probabilities(theta[a], theta[b], fit.home, fit.tie)
    u = rng.random(len(a))
    outcome = (u[:, None] > np.cumsum(probs, axis=1)[:, :2]).sum(axis=1)
    null_choice = np.select([outcome == 0, outcome == 1], [LEFT, RIGHT], TIE)
    pv = vote_p_values(fit, a, b, null_choice, seed=3)
    assert kstest(pv, "uniform").pvalue > 0.01
    _, rows = improbable_raters(raters, a, b, null_choice, 4, fit=fit)
    assert not any(r.flagged for r in rows)
