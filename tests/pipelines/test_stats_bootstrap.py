"""pipelines.stats.bootstrap: seeded percentile, paired and cluster bootstrap."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pipelines.stats.bootstrap import (
    bootstrap_mean,
    bootstrap_means,
    bootstrap_statistic,
    cluster_bootstrap,
    cluster_bootstrap_mean,
    counts_from_indices,
    paired_bootstrap,
    paired_bootstrap_delta,
)


def test_identical_runs_give_delta_zero_and_interval_zero_zero():
    iou = np.random.default_rng(0).random(500)
    delta = paired_bootstrap_delta(iou, iou.copy(), rounds=300, seed=1).delta
    assert (delta.estimate, delta.low, delta.high) == (0.0, 0.0, 0.0)


def test_same_seed_gives_the_same_interval_and_another_seed_does_not():
    values = np.random.default_rng(0).random(300)
    a = bootstrap_mean(values, rounds=200, seed=7)
    assert a == bootstrap_mean(values, rounds=200, seed=7)
    assert a != bootstrap_mean(values, rounds=200, seed=8)
    assert a.estimate == pytest.approx(values.mean())


def test_counts_rows_are_the_multinomial_counts_of_the_index_rows():
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 7, size=(5, 7))
    counts = counts_from_indices(idx, 7)
    for r in range(5):
        assert counts[r].tolist() == np.bincount(idx[r], minlength=7).tolist()


def test_vectorised_mean_matches_the_generic_statistic_on_the_same_draws():
    values = np.random.default_rng(1).normal(size=400)
    fast = bootstrap_mean(values, rounds=500, seed=5)
    slow = bootstrap_statistic(values, np.mean, rounds=500, seed=5)
    assert fast.low == pytest.approx(slow.low, abs=1e-12)
    assert fast.high == pytest.approx(slow.high, abs=1e-12)


def test_paired_bootstrap_shares_one_draw_across_metrics_and_runs():
    rng = np.random.default_rng(2)
    base = {"iou": rng.random(200), "mae": rng.random(200)}
    cand = {"iou": base["iou"] + 0.05, "mae": base["mae"].copy()}
    out = paired_bootstrap(base, cand, rounds=400, seed=3)
    # A constant shift gives a degenerate delta distribution only if every round uses the same
    # images for both runs.
    assert out["iou"].delta.low == pytest.approx(0.05)
    assert out["iou"].delta.high == pytest.approx(0.05)
    assert out["mae"].delta.low == out["mae"].delta.high == 0.0
    # And the same image draw as the per-run means of bootstrap_means (up to BLAS rounding).
    alone = bootstrap_means(base, rounds=400, seed=3)
    for name in ("iou", "mae"):
        assert out[name].baseline.low == pytest.approx(alone[name].low, abs=1e-12)
        assert out[name].baseline.high == pytest.approx(alone[name].high, abs=1e-12)


def test_paired_interval_is_narrower_than_unpaired_for_correlated_runs():
    rng = np.random.default_rng(4)
    hardness = rng.random(1000)
    base = hardness + rng.normal(0, 0.02, 1000)
    cand = hardness + 0.01 + rng.normal(0, 0.02, 1000)
    paired = paired_bootstrap_delta(base, cand, rounds=500, seed=0).delta
    a = bootstrap_mean(base, rounds=500, seed=1)
    b = bootstrap_mean(cand, rounds=500, seed=2)
    assert paired.high - paired.low < 0.25 * ((a.high - a.low) + (b.high - b.low))
    assert paired.low > 0


def test_percentile_interval_covers_the_true_mean_at_about_the_nominal_rate():
    rng = np.random.default_rng(11)
    covered = 0
    for sim in range(100):
        sample = rng.exponential(1.0, 200)  # skewed, true mean 1
        iv = bootstrap_mean(sample, rounds=400, seed=sim)
        covered += iv.low <= 1.0 <= iv.high
    assert covered >= 85


def test_cluster_bootstrap_is_wider_than_vote_bootstrap_when_votes_cluster():
    rng = np.random.default_rng(5)
    item_effect = rng.normal(0, 1, 200)
    clusters = np.repeat(np.arange(200), 10)
    votes = item_effect[clusters] + rng.normal(0, 0.2, 2000)
    by_item = cluster_bootstrap_mean(votes, clusters, rounds=400, seed=0)
    by_vote = bootstrap_mean(votes, rounds=400, seed=0)
    assert by_item.estimate == pytest.approx(votes.mean())
    assert (by_item.high - by_item.low) > 2.0 * (by_vote.high - by_vote.low)
    generic = cluster_bootstrap(votes, clusters, np.mean, rounds=400, seed=0)
    assert generic.high - generic.low == pytest.approx(by_item.high - by_item.low, rel=0.25)


def test_non_finite_values_are_rejected_with_the_unit_named():
    with pytest.raises(ValueError, match="unit 2"):
        bootstrap_mean([0.1, 0.2, np.nan], rounds=10)
    with pytest.raises(ValueError, match="different numbers of images"):
        paired_bootstrap_delta([0.1, 0.2], [0.1, 0.2, 0.3], rounds=10)


def test_thousand_rounds_over_ten_thousand_images_is_fast():
    values = np.random.default_rng(0).random((10_000, 3))
    start = time.perf_counter()
    paired_bootstrap(
        {f"m{k}": values[:, k] for k in range(3)},
        {f"m{k}": values[:, k] + 0.01 for k in range(3)},
        rounds=1000,
        seed=0,
    )
    assert time.perf_counter() - start < 5.0
