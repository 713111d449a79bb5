"""Leaderboard intervals: cell intervals against a direct numpy percentile bootstrap and
scipy.stats.bootstrap; rank intervals on constructed data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pipelines.stats.bootstrap import bootstrap_means
from pipelines.stats.ranking import RankInterval, rank_intervals


def test_cell_interval_matches_a_direct_numpy_percentile_bootstrap_with_the_same_draws():
    rng = np.random.default_rng(5)
    iou = rng.beta(5, 2, size=30)
    mae = rng.beta(1, 8, size=30)
    found = bootstrap_means({"iou": iou, "mae": mae}, rounds=1000, seed=7)
    # The same draws written out: one index matrix per round, shared by both metrics.
    draw = np.random.default_rng(7).integers(0, 30, size=(1000, 30), dtype=np.int32)
    for name, values in (("iou", iou), ("mae", mae)):
        means = values[draw].mean(axis=1)
        low, high = np.quantile(means, [0.025, 0.975])
        assert found[name].estimate == pytest.approx(values.mean(), abs=1e-12)
        assert found[name].low == pytest.approx(low, abs=1e-12)
        assert found[name].high == pytest.approx(high, abs=1e-12)


def test_cell_interval_agrees_with_scipy_bootstrap_percentile():
    rng = np.random.default_rng(11)
    values = rng.beta(4, 3, size=60)
    ours = bootstrap_means({"iou": values}, rounds=20000, seed=1)["iou"]
    ref = stats.bootstrap(
        (values,), np.mean, n_resamples=20000, method="percentile", random_state=2
    ).confidence_interval
    # Different random draws: the two Monte Carlo estimates of the same quantiles agree closely
    # (the interval is ~0.1 wide; Monte Carlo error at 20 000 rounds is ~0.002).
    assert ours.low == pytest.approx(ref.low, abs=0.004)
    assert ours.high == pytest.approx(ref.high, abs=0.004)


def test_a_clear_winner_ranks_one_and_an_unresolved_pair_shares_a_range():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.7, size=40)
    noise = lambda: rng.normal(0, 0.02, size=40)  # noqa: E731
    winner = base + 0.2 + noise()
    a = base + noise()
    b = base + noise()  # a and b: the same quality, only noise between them
    loser = base - 0.2 + noise()
    ranks = rank_intervals(np.column_stack([a, winner, loser, b]), rounds=1000, seed=3)
    assert ranks[1] == RankInterval(rank=1, low=1, high=1, n=40)
    assert (ranks[0].low, ranks[0].high) == (2, 3)
    assert (ranks[3].low, ranks[3].high) == (2, 3)
    assert ranks[2] == RankInterval(rank=4, low=4, high=4, n=40)
    assert {ranks[0].rank, ranks[3].rank} == {2, 3}
    assert ranks[0].text() == "2–3" and ranks[1].text() == "1"


def test_overlapping_pair_at_the_top_shares_one_to_two_and_lower_is_better_flips():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.0, 0.4, size=30)
    first = base + rng.normal(0, 0.03, size=30)
    second = base + 0.005 + rng.normal(0, 0.03, size=30)
    worse = base + 0.3
    # Lower is better (an error such as MAE): `worse` is last, the pair shares 1-2.
    ranks = rank_intervals(np.column_stack([first, second, worse]), lower_is_better=True)
    assert [(r.low, r.high) for r in ranks] == [(1, 2), (1, 2), (3, 3)]
    # The same columns when higher is better: `worse` becomes the clear winner.
    ranks = rank_intervals(np.column_stack([first, second, worse]), lower_is_better=False)
    assert (ranks[2].low, ranks[2].high) == (1, 1)


def test_one_version_and_bad_shapes():
    assert rank_intervals(np.ones((5, 1))) == [RankInterval(1, 1, 1, 5)]
    with pytest.raises(ValueError, match="images x versions"):
        rank_intervals(np.ones(5))
