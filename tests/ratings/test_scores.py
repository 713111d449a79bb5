"""Campaign statistics on simulated campaigns with known strengths, through the same count-table
code the stored campaign report uses (`pipelines.stats.campaign`): gold catches random clickers,
leaving them out moves Bradley–Terry toward the truth, and the count-table forms agree with the
per-rating reference forms (Krippendorff over the raters × units matrix,
`ItemPairCounts.from_votes`).
"""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.stats import (
    ItemPairCounts,
    annotator_qc,
    bradley_terry,
    flagged_annotators,
    krippendorff_alpha,
)
from pipelines.stats.campaign import (
    TaskTable,
    agreement,
    both_bad_rate,
    bt,
    human_disagreement,
    metric_divergence,
    pair_counts,
)
from pipelines.stats.simulate import SimulatedVotes, simulate_campaign

pytestmark = pytest.mark.no_services

TRUTH = np.array([0.0, 1.0, -0.8, 0.4])
NAMES = ["prod", "b", "c", "d"]
CLICKERS = {f"random-{i}" for i in range(4)}


def _sim() -> SimulatedVotes:
    return simulate_campaign(
        TRUTH,
        n_items=400,
        votes_per_item=3,
        n_honest=6,
        n_random=4,
        gold_per_annotator=20,
        seed=3,
    )


def _table(sim: SimulatedVotes, excluded: frozenset[str] | set[str] = frozenset()) -> TaskTable:
    """Non-gold votes as a task table; a task is one (item, pair), as in a real campaign."""
    keep = (sim.gold < 0) & ~np.isin(sim.annotators, sorted(excluded))
    items = np.unique(sim.items, return_inverse=True)[1].reshape(-1)
    key = (items * 16 + sim.model_a * 4 + sim.model_b)[keep]
    return TaskTable.from_votes(
        task=key,
        item=items[keep],
        run_a=sim.model_a[keep],
        run_b=sim.model_b[keep],
        stratum=np.full(int(keep.sum()), "control"),
        value=sim.choices[keep],
    )


def _qc(sim: SimulatedVotes, *, min_gold: int = 10) -> set[str]:
    rows = annotator_qc(
        sim.annotators, sim.choices, sim.seconds, sim.gold, threshold=0.7, min_gold=min_gold
    )
    if min_gold > 20:
        assert all(r.insufficient_gold for r in rows)
    return flagged_annotators(rows)


def _error(table: TaskTable) -> float:
    report = bt(table, NAMES, reference=0, rounds=200)
    assert report is not None
    est = np.array([report.strengths[n].estimate for n in NAMES])
    return float(np.sqrt(np.mean((est - TRUTH) ** 2)))


def test_gold_catches_random_clickers_and_exclusion_moves_scores_toward_truth() -> None:
    sim = _sim()
    flagged = _qc(sim)
    assert flagged == CLICKERS
    with_clickers = _error(_table(sim))
    without = _error(_table(sim, flagged))
    assert without < with_clickers
    assert without < 0.15


def test_too_little_gold_flags_nobody() -> None:
    assert _qc(_sim(), min_gold=50) == set()


def test_bt_intervals_cover_the_truth_and_anchor_is_zero() -> None:
    report = bt(_table(_sim(), CLICKERS), NAMES, reference=0, rounds=300)
    assert report is not None
    assert report.strengths["prod"].estimate == 0.0
    for name, truth in zip(NAMES[1:], TRUTH[1:], strict=True):
        iv = report.strengths[name]
        assert iv.low - 0.1 <= truth <= iv.high + 0.1


def test_count_table_bt_equals_bt_from_one_row_per_vote() -> None:
    sim = _sim()
    keep = sim.gold < 0
    per_vote = ItemPairCounts.from_votes(
        sim.items[keep], sim.model_a[keep], sim.model_b[keep], sim.choices[keep], n_models=4
    )
    table = _table(sim)
    from_table = pair_counts(table, 4)
    np.testing.assert_allclose(from_table.aggregate(), per_vote.aggregate())
    a = bradley_terry(per_vote, NAMES, rounds=50, seed=1)
    b = bradley_terry(from_table, NAMES, rounds=50, seed=1)
    for n in NAMES:
        assert a.strengths[n].estimate == pytest.approx(b.strengths[n].estimate, abs=1e-9)


def test_agreement_from_counts_matches_krippendorff_on_the_rater_matrix() -> None:
    sim = _sim()
    keep = (sim.gold < 0) & ~np.isin(sim.annotators, sorted(CLICKERS))
    items = np.unique(sim.items, return_inverse=True)[1].reshape(-1)
    key = items * 16 + sim.model_a * 4 + sim.model_b
    _, rater = np.unique(sim.annotators, return_inverse=True)
    # A campaign never lets one annotator rate a task twice (a unique constraint): keep one.
    _, first = np.unique(key * 100 + rater.reshape(-1), return_index=True)
    once = np.zeros(len(key), dtype=bool)
    once[first] = True
    sim = sim.select(keep & once)
    key, rater = key[keep & once], rater.reshape(-1)[keep & once]
    _, unit = np.unique(key, return_inverse=True)
    matrix = np.full((rater.max() + 1, unit.max() + 1), np.nan)
    matrix[rater, unit] = sim.choices
    alpha = agreement(_table(sim)).alpha
    assert alpha == pytest.approx(krippendorff_alpha(matrix), abs=1e-12)
    assert 0.0 < alpha < 1.0


def test_agreement_is_higher_without_clickers() -> None:
    sim = _sim()
    assert agreement(_table(sim, CLICKERS)).alpha > agreement(_table(sim)).alpha


def test_gold_votes_never_count_in_scores() -> None:
    sim = _sim()
    gold_only = sim.select(sim.gold >= 0)
    assert len(_table(gold_only)) == 0
    assert bt(_table(gold_only), NAMES, reference=0) is None


def test_disagreement_divergence_and_both_bad_from_hand_counts() -> None:
    # task 1: 2 × a, 1 × b; task 2: 3 × both bad; task 3: 1 × a (one vote: no disagreement row)
    table = TaskTable.from_counts(
        task=[1, 2, 3],
        item=[10, 20, 30],
        run_a=[0, 0, 1],
        run_b=[1, 1, 0],
        stratum=["control"] * 3,
        vote_task=[1, 1, 2, 3],
        vote_value=[0, 1, 3, 0],
        vote_count=[2, 1, 3, 1],
    )
    rows = human_disagreement(table)
    assert [r["task"] for r in rows] == [1, 2]
    assert rows[0]["disagreement"] == pytest.approx(1 / 3) and rows[1]["disagreement"] == 0.0
    assert both_bad_rate(table) == pytest.approx(3 / 7)
    # Humans prefer a on task 1 (h = 1/3) while IoU prefers b by 0.2: divergence 0.2/3.
    div = metric_divergence(table, [0.5, 0.9, np.nan], [0.7, 0.1, 0.4])
    assert [r["task"] for r in div] == [1]
    assert div[0]["divergence"] == pytest.approx(0.2 / 3)
