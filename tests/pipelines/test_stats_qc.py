"""pipelines.stats.qc: gold accuracy, left bias, straight-lining; excluding clickers helps BT."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.stats.bradley_terry import fit_bradley_terry
from pipelines.stats.pairs import ItemPairCounts, bt_wins
from pipelines.stats.qc import annotator_qc, flagged_annotators, keep_mask, longest_run
from pipelines.stats.simulate import SimulatedVotes, simulate_campaign

TRUTH = np.array([0.0, 0.9, -0.6, 1.4, 0.4, -1.1])


def qc_of(votes: SimulatedVotes, **kwargs):  # type: ignore[no-untyped-def]
    gold = np.where(votes.gold >= 0, np.array(["left", "right"])[votes.gold.clip(0)], "")
    return annotator_qc(votes.annotators, votes.choices, votes.seconds, gold, **kwargs)


def strengths(votes: SimulatedVotes) -> np.ndarray:
    scored = votes.select(votes.gold < 0)  # gold is excluded from scores
    counts = ItemPairCounts.from_votes(
        scored.items, scored.model_a, scored.model_b, scored.choices, len(TRUTH)
    )
    return fit_bradley_terry(bt_wins(counts.aggregate()), reference=0).strengths


def test_gold_tasks_catch_a_random_clicker():
    votes = simulate_campaign(
        TRUTH, n_items=600, votes_per_item=3, n_honest=8, n_random=1, gold_per_annotator=100, seed=7
    )
    rows = {r.annotator: r for r in qc_of(votes, threshold=0.7)}
    clicker = rows["random-0"]
    assert clicker.flagged and clicker.gold_accuracy == pytest.approx(0.5, abs=0.15)
    assert clicker.gold_high < 0.7  # and not by luck: the whole Wilson interval is below
    assert flagged_annotators(list(rows.values())) == {"random-0"}
    assert all(r.gold_accuracy > 0.85 for name, r in rows.items() if name.startswith("honest"))
    assert (
        clicker.median_seconds
        < 2.0
        < min(r.median_seconds for r in rows.values() if r.annotator.startswith("honest"))
    )


def test_excluding_flagged_random_clickers_moves_bt_scores_toward_the_truth():
    """Gold catches random clickers, and leaving out their votes moves the
    Bradley–Terry strengths toward the known truth."""
    votes = simulate_campaign(
        TRUTH,
        n_items=3000,
        votes_per_item=4,
        n_honest=6,
        n_random=4,
        gold_per_annotator=30,
        seed=2024,
    )
    flagged = flagged_annotators(qc_of(votes))
    assert flagged == {f"random-{i}" for i in range(4)}
    everyone = strengths(votes)
    cleaned = strengths(votes.select(keep_mask(votes.annotators, flagged)))
    err_all = np.sqrt(np.mean((everyone - TRUTH) ** 2))
    err_clean = np.sqrt(np.mean((cleaned - TRUTH) ** 2))
    assert err_clean < 0.5 * err_all
    assert err_clean < 0.1
    # Random votes are coin flips between the shown sides: they shrink every strength toward the
    # reference, and excluding them undoes the shrinkage model by model.
    moved = np.abs(cleaned - TRUTH)[1:] < np.abs(everyone - TRUTH)[1:]
    assert moved.all()
    slope = np.polyfit(TRUTH, everyone, 1)[0]
    assert slope < 0.8 and np.polyfit(TRUTH, cleaned, 1)[0] == pytest.approx(1.0, abs=0.08)


def test_both_bad_on_gold_is_not_scored_and_a_tie_is_wrong():
    rows = annotator_qc(
        ["a"] * 4,
        ["left", "both_bad", "tie", "right"],
        [3, 3, 3, 3],
        ["left", "left", "left", "right"],
        min_gold=1,
    )
    (row,) = rows
    assert (row.gold_scored, row.gold_correct) == (3, 2)
    assert row.gold_accuracy == pytest.approx(2 / 3)


def test_too_little_gold_is_reported_not_flagged():
    rows = annotator_qc(["a"] * 5, ["right"] * 5, [1] * 5, ["left"] * 5, min_gold=10)
    assert rows[0].gold_accuracy == 0.0 and rows[0].insufficient_gold and not rows[0].flagged


def test_left_bias_is_tested_against_one_half():
    rng = np.random.default_rng(0)
    n = 200
    choices = np.concatenate(
        [
            np.where(rng.random(n) < 0.8, "left", "right"),
            np.where(rng.random(n) < 0.5, "left", "right"),
        ]
    )
    who = ["biased"] * n + ["fair"] * n
    rows = {r.annotator: r for r in annotator_qc(who, choices, np.ones(2 * n))}
    assert rows["biased"].left_share > 0.7 and rows["biased"].left_p_value < 1e-6
    assert any("left bias" in w for w in rows["biased"].warnings)
    assert rows["fair"].left_p_value > 0.01 and not rows["fair"].warnings[1:]
    assert not rows["biased"].flagged  # reported, not excluded: there is no gold here


def test_straight_lining_reports_the_longest_run_and_the_modal_share():
    choices = ["left", "right"] * 5 + ["tie"] * 20 + ["left", "right"]
    (row,) = annotator_qc(["a"] * len(choices), choices, np.ones(len(choices)))
    assert row.longest_run == 20 and row.modal_choice == "tie"
    assert row.modal_share == pytest.approx(20 / 32)
    assert any("straight-lining" in w for w in row.warnings)
    assert longest_run(np.array([], dtype=np.int64)) == 0
    assert longest_run(np.array([1, 1, 2, 2, 2, 1])) == 3


def test_unknown_choices_and_bad_gold_answers_are_rejected():
    with pytest.raises(ValueError, match="unknown choice"):
        annotator_qc(["a"], ["maybe"], [1.0])
    with pytest.raises(ValueError, match="gold answer"):
        annotator_qc(["a"], ["left"], [1.0], ["tie"])
