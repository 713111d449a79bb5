"""pipelines.stats.bradley_terry / pairs: strengths, item bootstrap, pair rates."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from pipelines.stats.bradley_terry import bootstrap_strengths, bradley_terry, fit_bradley_terry
from pipelines.stats.pairs import (
    BOTH_BAD,
    LEFT,
    RIGHT,
    TIE,
    ItemPairCounts,
    bt_wins,
    wilson_interval,
)
from pipelines.stats.simulate import simulate_campaign

TRUTH = np.array([0.0, 0.8, -0.5, 1.5, 0.3, -1.2])


def counts_of(votes) -> ItemPairCounts:  # type: ignore[no-untyped-def]
    return ItemPairCounts.from_votes(
        votes.items,
        votes.model_a,
        votes.model_b,
        votes.choices,
        int(max(votes.model_a.max(), votes.model_b.max()) + 1),
    )


def sklearn_strengths(a, b, choices, k, reference):  # type: ignore[no-untyped-def]
    """Logistic regression on one row per vote: x_a = +1, x_b = -1, y = a won; a tie or both-bad
    vote is two rows of weight 1/2 (y = 1 and y = 0), i.e. half a win each way."""
    rows, ys, weights = [], [], []
    for i, j, c in zip(a, b, choices, strict=True):
        x = np.zeros(k)
        x[i], x[j] = 1.0, -1.0
        if c in (LEFT, RIGHT):
            rows.append(x), ys.append(int(c == LEFT)), weights.append(1.0)
        else:
            rows += [x, x]
            ys += [1, 0]
            weights += [0.5, 0.5]
    model = LogisticRegression(C=np.inf, fit_intercept=False, tol=1e-12, max_iter=10_000)
    model.fit(np.array(rows), np.array(ys), sample_weight=np.array(weights))
    coef = model.coef_[0]
    return coef - coef[reference]


def test_it_recovers_known_strengths_with_ties_as_half_wins():
    votes = simulate_campaign(
        TRUTH, n_items=20_000, votes_per_item=5, n_honest=10, tie_rate=0.4, seed=1
    )
    assert np.isin(votes.choices, [TIE, BOTH_BAD]).mean() > 0.2  # ties really are in play
    fit = fit_bradley_terry(bt_wins(counts_of(votes).aggregate()), reference=0)
    assert fit.converged and fit.connected and fit.mle_exists
    assert np.abs(fit.strengths - TRUTH).max() < 0.06


@pytest.mark.parametrize("reference", [0, 3])
def test_it_equals_a_logistic_regression_on_one_row_per_vote(reference):
    votes = simulate_campaign(TRUTH[:5], n_items=80, votes_per_item=5, n_honest=3, seed=2)
    counts = counts_of(votes)
    ours = fit_bradley_terry(bt_wins(counts.aggregate()), reference=reference).strengths
    ref = sklearn_strengths(votes.model_a, votes.model_b, votes.choices, 5, reference)
    assert np.abs(ours - ref).max() < 1e-3


def test_strengths_are_anchored_at_the_reference_model():
    votes = simulate_campaign(TRUTH, n_items=500, votes_per_item=4, n_honest=3, seed=3)
    wins = bt_wins(counts_of(votes).aggregate())
    at0 = fit_bradley_terry(wins, reference=0).strengths
    at4 = fit_bradley_terry(wins, reference=4).strengths
    assert at4[4] == 0.0 and at0[0] == 0.0
    np.testing.assert_allclose(at4, at0 - at0[4], atol=1e-8)
    report = bradley_terry(
        counts_of(votes), [f"m{i}" for i in range(6)], reference="m4", rounds=100
    )
    assert report.reference == "m4"
    prod = report.strengths["m4"]
    assert (prod.estimate, prod.low, prod.high) == (0.0, 0.0, 0.0)


def test_item_bootstrap_intervals_cover_the_truth_at_about_the_nominal_rate():
    truth = np.array([0.0, 0.7, -0.4, 0.2])
    covered = 0
    for sim in range(100):
        votes = simulate_campaign(truth, n_items=150, votes_per_item=4, n_honest=5, seed=sim)
        counts = counts_of(votes)
        samples = bootstrap_strengths(counts, reference=0, rounds=200, seed=sim)
        low, high = np.percentile(samples[:, 1], [2.5, 97.5])
        covered += low <= truth[1] <= high
    assert covered >= 85


def test_separation_and_disconnection_are_reported_not_fatal():
    wins = np.zeros((4, 4))
    wins[1, 0] = 5  # model 1 never lost: the maximum-likelihood strength is infinite
    wins[0, 2], wins[2, 0] = 3, 2
    fit = fit_bradley_terry(wins)
    assert fit.converged and not fit.mle_exists and np.isfinite(fit.strengths).all()
    assert fit.strengths[1] > 5 and not fit.connected  # model 3 has no comparison at all
    assert fit.strengths[3] == pytest.approx(0.0, abs=1e-9)


def test_dense_tensors_and_vote_rows_give_the_same_counts():
    items = ["x", "x", "y", "y", "y"]
    a, b = [0, 1, 2, 0, 1], [1, 2, 0, 2, 0]
    choices = ["left", "tie", "right", "both_bad", "left"]
    from_votes = ItemPairCounts.from_votes(items, a, b, choices, 3)
    wins = np.zeros((2, 3, 3))
    ties = np.zeros((2, 3, 3))
    bad = np.zeros((2, 3, 3))
    wins[0, 0, 1] = 1
    ties[0, 1, 2] = 1
    wins[1, 0, 2] = 1
    bad[1, 0, 2] = 1
    wins[1, 1, 0] = 1
    dense = ItemPairCounts.from_dense(wins, ties, bad)
    np.testing.assert_array_equal(from_votes.matrix.toarray(), dense.matrix.toarray())
    agg = from_votes.aggregate()
    assert bt_wins(agg)[1, 2] == 0.5 and bt_wins(agg)[2, 1] == 0.5


def test_pair_rates_sum_to_one_and_count_votes_and_items():
    votes = simulate_campaign(TRUTH[:3], n_items=400, votes_per_item=3, n_honest=4, seed=4)
    report = bradley_terry(counts_of(votes), ["prod", "cand", "old"], rounds=200, seed=0)
    assert len(report.pairs) == 3 and report.votes == 1200 and report.items == 400
    for pair in report.pairs:
        rates = [pair.win, pair.tie, pair.loss, pair.both_bad]
        assert sum(r.estimate for r in rates) == pytest.approx(1.0)
        assert all(r.low <= r.estimate <= r.high for r in rates)
        sel = ((votes.model_a == pair.a) & (votes.model_b == pair.b)) | (
            (votes.model_a == pair.b) & (votes.model_b == pair.a)
        )
        assert pair.votes == sel.sum()
        assert pair.items == len(np.unique(votes.items[sel]))
        a_won = (sel & (votes.model_a == pair.a) & (votes.choices == LEFT)) | (
            sel & (votes.model_b == pair.a) & (votes.choices == RIGHT)
        )
        assert pair.win.estimate == pytest.approx(a_won.sum() / sel.sum())
    both_bad = (votes.choices == BOTH_BAD) & ((votes.model_a == 1) | (votes.model_b == 1))
    involved = (votes.model_a == 1) | (votes.model_b == 1)
    assert report.both_bad["cand"].estimate == pytest.approx(both_bad.sum() / involved.sum())
    assert report.as_dict()["pairs"][0]["a"] == "prod"


def test_wilson_interval_matches_the_textbook_value():
    iv = wilson_interval(50, 100)
    assert (iv.low, iv.high) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    zero = wilson_interval(0, 20)
    assert zero.low == 0.0 and zero.high == pytest.approx(0.1611, abs=1e-4)
