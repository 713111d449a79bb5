"""Which metric predicts people: votes simulated to follow one metric make it rank first."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pipelines.stats.metric_agreement import (
    ABSTAIN,
    AGREE,
    DISAGREE,
    agreement_table,
    disagreements,
    item_codes,
    metric_side,
    people_side,
    pool_codes,
    sentence,
)


def _simulate(n_items: int, *, seed: int, raters: int = 3, scale: float = 0.05):
    """Items with five metrics per side; raters vote by `target` plus logistic noise."""
    rng = np.random.default_rng(seed)
    target_a, target_b = rng.uniform(0.3, 0.95, n_items), rng.uniform(0.3, 0.95, n_items)

    def noisy(x, sd):
        return x + rng.normal(0, sd, n_items)

    values = {
        "target": (target_a, target_b),
        # correlated with the target, but noisier: should rank second
        "cousin": (noisy(target_a, 0.15), noisy(target_b, 0.15)),
        # lower is better and tracks the target inverted: agrees as well as its noise allows
        "error": (noisy(1 - target_a, 0.3), noisy(1 - target_b, 0.3)),
        "noise": (rng.uniform(size=n_items), rng.uniform(size=n_items)),
        # coarse: equal on most items (abstains), so it earns about half
        "coarse": (np.round(target_a), np.round(target_b)),
    }  # fmt: skip
    lower = {"error"}
    p_a = 1 / (1 + np.exp(-(target_a - target_b) / scale))
    a_votes = rng.binomial(raters, p_a)
    b_votes = raters - a_votes
    # some ties / both-bad votes replace decisive ones on a few items
    ties = rng.binomial(1, 0.1, n_items)
    b_votes = np.maximum(b_votes - ties, 0)
    return values, lower, a_votes, b_votes


def _codes(values, lower, a_votes, b_votes):
    people = people_side(a_votes, b_votes)
    return {
        name: item_codes(people, metric_side(va, vb, lower_is_better=name in lower))
        for name, (va, vb) in values.items()
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_votes_that_follow_one_metric_rank_it_first_with_an_interval_above_the_others(seed):
    values, lower, a_votes, b_votes = _simulate(600, seed=seed)
    table = agreement_table(_codes(values, lower, a_votes, b_votes), seed=seed)
    assert table[0].metric == "target"
    best = table[0]
    for other in table[1:]:
        assert best.low > other.high, (best, other)
        # the paired difference with the best excludes 0 as well
        assert other.vs_best is not None and other.vs_best[1] > 0
    assert best.vs_best is None
    assert [r.rank for r in table] == list(range(1, len(table) + 1))
    by = {r.metric: r for r in table}
    assert by["noise"].low < 0.5 < by["noise"].high  # no better than a coin
    assert by["error"].share > 0.6  # direction honoured: lower is better


def test_shares_match_a_per_item_reference_and_scipy_percentile_bootstrap():
    values, lower, a_votes, b_votes = _simulate(300, seed=7)
    codes = _codes(values, lower, a_votes, b_votes)
    table = {r.metric: r for r in agreement_table(codes, rounds=2000, seed=3)}
    for name, (va, vb) in values.items():
        # reference: one item at a time, as the docstring states the rule
        credit = []
        for i in range(len(va)):
            if a_votes[i] == b_votes[i]:
                continue
            people_a = a_votes[i] > b_votes[i]
            good = (va[i] < vb[i]) if name in lower else (va[i] > vb[i])
            bad = (va[i] > vb[i]) if name in lower else (va[i] < vb[i])
            credit.append(0.5 if not (good or bad) else float(good == people_a))
        row = table[name]
        assert row.n == len(credit)
        assert row.share == pytest.approx(np.mean(credit))
        ref = stats.bootstrap((np.asarray(credit),), np.mean, n_resamples=4000,
                              method="percentile", random_state=11).confidence_interval  # fmt: skip
        assert row.low == pytest.approx(ref.low, abs=0.015)
        assert row.high == pytest.approx(ref.high, abs=0.015)


def test_ties_and_both_bad_leave_an_item_undecided_and_equal_values_abstain():
    people = people_side([2, 1, 0, 3], [2, 0, 0, 1])  # 2-2, 1-0, only ties, 3-1
    assert people.tolist() == [0, 1, 0, 1]
    side = metric_side([0.5, 0.7, 0.1, 0.4], [0.5, 0.7, 0.9, 0.6], lower_is_better=False)
    assert side.tolist() == [0, 0, -1, -1]
    codes = item_codes(people, side)
    assert codes.tolist() == [ABSTAIN, DISAGREE]  # only the two decided items
    missing = metric_side([np.nan, 0.2], [0.3, np.nan], lower_is_better=True)
    assert missing.tolist() == [0, 0]
    (row,) = agreement_table({"m": codes}, rounds=200)
    assert row.share == pytest.approx(0.25) and (row.agree, row.abstain, row.disagree) == (0, 1, 1)


def test_no_decided_item_gives_an_empty_table_and_says_so():
    assert agreement_table({"iou": np.array([], dtype=np.int64)}) == []
    assert "no decided item" in sentence([], {})


def test_bad_codes_and_shapes_are_refused():
    with pytest.raises(ValueError, match="codes must be"):
        agreement_table({"m": [3, 2]})
    with pytest.raises(ValueError, match="differ in shape"):
        people_side([1, 2], [1])
    with pytest.raises(ValueError, match="negative"):
        people_side([-1], [0])


def test_pooling_keeps_the_metrics_every_campaign_carries():
    pooled = pool_codes([{"iou": [AGREE], "mae": [DISAGREE]}, {"iou": [ABSTAIN, AGREE]}, {}])
    assert list(pooled) == ["iou"]
    assert pooled["iou"].tolist() == [AGREE, ABSTAIN, AGREE]


def test_disagreements_put_the_strongest_people_margin_first():
    people = people_side([5, 3, 0, 4, 2], [0, 2, 5, 1, 2])
    metric = np.array([-1, -1, 1, 1, -1])  # wrong on items 0, 1, 2; right on 3; 4 undecided
    gap = np.array([0.1, 0.9, 0.2, 0.5, 0.5])
    # 5-0 twice (the larger metric gap first), then 3-2; item 3 agrees, item 4 is undecided
    assert disagreements(people, [5, 3, 0, 4, 2], [0, 2, 5, 1, 2], metric, gap) == [2, 0, 1]
    assert disagreements(people, [5, 3, 0, 4, 2], [0, 2, 5, 1, 2], metric, gap, limit=1) == [2]


def test_sentence_names_the_two_best_with_their_intervals():
    codes = {"boundary_iou": [AGREE] * 3 + [DISAGREE], "iou": [AGREE, DISAGREE] * 2}
    rows = [r.as_dict() for r in agreement_table(codes, rounds=100)]
    text = sentence(rows, {"boundary_iou": "boundary IoU", "iou": "IoU"})
    assert text.startswith("boundary IoU agreed with people on 75 % [")
    assert "of 4 decided items, IoU on 50 % [" in text
