"""pipelines.stats.agreement: Krippendorff's alpha, Fleiss' kappa and Dawid–Skene."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pipelines.stats.agreement import (
    dawid_skene,
    equal_rater_items,
    fleiss_kappa,
    krippendorff_alpha,
    ratings_to_table,
)

nan = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x 12
# units, values 1-5, missing data. Published: nominal .743, ordinal .815, interval .849.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
)

# Fleiss (1971) as reproduced on Wikipedia ("Fleiss' kappa", worked example): 10 subjects,
# 14 raters, 5 categories; kappa = 0.210.
FLEISS_EXAMPLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_krippendorff_alpha_reproduces_the_published_example(level, published):
    assert round(krippendorff_alpha(KRIPPENDORFF_2011, level), 3) == published


def brute_force_alpha(data: np.ndarray, level: str) -> float:
    """alpha = 1 - D_o / D_e straight from the pair definitions (independent of the coincidence
    matrix code): D_o averages delta over pairs of values within a unit (weight 1 / (m_u - 1)),
    D_e over all pairs of pairable values."""
    units = [col[~np.isnan(col)] for col in data.T]
    units = [u for u in units if len(u) >= 2]
    pooled = np.concatenate(units)
    n = len(pooled)
    values = np.unique(pooled)
    n_g = {v: np.sum(pooled == v) for v in values}

    def delta(c: float, k: float) -> float:
        if level == "nominal":
            return float(c != k)
        if level == "interval":
            return (c - k) ** 2
        lo, hi = min(c, k), max(c, k)
        return (sum(n_g[g] for g in values if lo <= g <= hi) - (n_g[c] + n_g[k]) / 2) ** 2

    d_o = (
        sum(
            delta(u[i], u[j]) / (len(u) - 1)
            for u in units
            for i, j in itertools.permutations(range(len(u)), 2)
        )
        / n
    )
    d_e = sum(delta(pooled[i], pooled[j]) for i, j in itertools.permutations(range(n), 2)) / (
        n * (n - 1)
    )
    return 1.0 - d_o / d_e


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_krippendorff_alpha_matches_the_pair_definition_on_random_data(level):
    rng = np.random.default_rng(0)
    for _ in range(5):
        data = rng.integers(1, 6, size=(4, 15)).astype(float)
        data[rng.random(data.shape) < 0.3] = nan
        assert krippendorff_alpha(data, level) == pytest.approx(brute_force_alpha(data, level))


def test_ordinal_alpha_credits_near_misses_that_nominal_alpha_does_not():
    # Three raters score eight cutouts 1-5; disagreements are always by one step.
    scores = np.array(
        [
            [1, 2, 3, 4, 5, 1, 3, 5],
            [2, 2, 3, 5, 5, 1, 4, 4],
            [1, 3, 3, 4, 4, 2, 3, 5],
        ],
        dtype=float,
    )
    nominal = krippendorff_alpha(scores, "nominal")
    ordinal = krippendorff_alpha(scores, "ordinal")
    assert ordinal > 0.75 > 0.4 > nominal
    assert ordinal == pytest.approx(brute_force_alpha(scores, "ordinal"))
    # Perfect agreement is 1; swapping an extreme pair of scores lowers ordinal alpha more than a
    # swap of neighbours.
    assert krippendorff_alpha(np.tile([1.0, 2, 3, 4, 5], (3, 1)), "ordinal") == 1.0
    near = np.array([[1.0, 2, 3, 4, 5], [2, 1, 3, 4, 5]])
    far = np.array([[1.0, 2, 3, 4, 5], [5, 2, 3, 4, 1]])
    assert krippendorff_alpha(near, "ordinal") > krippendorff_alpha(far, "ordinal")


def test_alpha_is_undefined_without_variation_and_ignores_units_rated_once():
    assert np.isnan(krippendorff_alpha(np.ones((3, 4))))
    data = KRIPPENDORFF_2011.copy()
    extra = np.full((4, 1), nan)
    extra[0, 0] = 1.0  # one value only: not pairable, must not change alpha
    assert krippendorff_alpha(np.hstack([data, extra])) == krippendorff_alpha(data)


def statsmodels_fleiss_kappa(table: np.ndarray) -> float:
    """statsmodels.stats.inter_rater.fleiss_kappa(table, method="fleiss"), re-typed by hand."""
    table = 1.0 * np.asarray(table)
    n_total = table.sum()
    n_rat = table.sum(1).max()
    p_cat = table.sum(0) / n_total
    p_rat = ((table * table).sum(1) - n_rat) / (n_rat * (n_rat - 1.0))
    p_mean_exp = (p_cat * p_cat).sum()
    return float((p_rat.mean() - p_mean_exp) / (1 - p_mean_exp))


def test_fleiss_kappa_reproduces_the_textbook_example_and_statsmodels_formula():
    assert round(fleiss_kappa(FLEISS_EXAMPLE), 3) == 0.210
    rng = np.random.default_rng(1)
    for _ in range(5):
        ratings = rng.integers(0, 4, size=(30, 5)).astype(float)
        table = ratings_to_table(ratings, 4)
        assert fleiss_kappa(table) == pytest.approx(statsmodels_fleiss_kappa(table))


def test_fleiss_kappa_runs_on_items_with_equal_rater_counts_only():
    ratings = np.array([[0, 0, 0], [1, 1, nan], [1, 1, 1], [0, 1, 0], [2, nan, nan]])
    table = ratings_to_table(ratings, 3)
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa(table)
    keep = equal_rater_items(table)
    assert keep.tolist() == [True, False, True, True, False]
    assert fleiss_kappa(table[keep]) == pytest.approx(statsmodels_fleiss_kappa(table[keep]))


def test_dawid_skene_weights_reliable_annotators_above_random_ones():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 2, 300)
    accuracy = np.array([0.9, 0.9, 0.85, 0.8, 0.5, 0.5])
    correct = rng.random((300, 6)) < accuracy
    labels = np.where(correct, truth[:, None], 1 - truth[:, None])
    labels[rng.random(labels.shape) < 0.2] = -1
    result = dawid_skene(labels, 2)
    assert result.accuracy[:4].min() > result.accuracy[4:].max() + 0.2
    assert np.all(np.abs(result.accuracy - accuracy) < 0.08)
    # Weighting by estimated confusion beats the plain majority vote (ties go to class 0).
    ones, zeros = (labels == 1).sum(axis=1), (labels == 0).sum(axis=1)
    majority = np.mean((ones > zeros).astype(int) == truth)
    assert np.mean(result.posterior.argmax(axis=1) == truth) > majority
