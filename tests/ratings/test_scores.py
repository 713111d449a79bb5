"""Scores on simulated campaigns with known strengths: gold catches random clickers, and leaving
them out moves Bradley–Terry toward the truth. Runs the same functions the campaign page uses."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.stats.simulate import simulate_campaign
from ratings.scores import Votes, agreement, bt, excluded_annotators, qc, scored

pytestmark = pytest.mark.no_services

TRUTH = np.array([0.0, 1.0, -0.8, 0.4])
NAMES = ["prod", "b", "c", "d"]


def _sim() -> Votes:
    sim = simulate_campaign(
        TRUTH, n_items=400, votes_per_item=3, n_honest=6, n_random=4, gold_per_annotator=20,
        seed=3,
    )  # fmt: skip
    return Votes.from_simulation(sim)


def _error(votes: Votes) -> float:
    report = bt(votes, NAMES, reference=0, rounds=200)
    assert report is not None
    est = np.array([report.strengths[n].estimate for n in NAMES])
    return float(np.sqrt(np.mean((est - TRUTH) ** 2)))


def test_gold_catches_random_clickers_and_exclusion_moves_scores_toward_truth() -> None:
    votes = _sim()
    rows = qc(votes, threshold=0.7, min_gold=10)
    flagged = excluded_annotators(rows)
    assert flagged == {f"random-{i}" for i in range(4)}
    with_clickers = _error(scored(votes))
    without = _error(scored(votes, flagged))
    assert without < with_clickers
    assert without < 0.15


def test_too_little_gold_flags_nobody() -> None:
    rows = qc(_sim(), threshold=0.7, min_gold=50)
    assert not excluded_annotators(rows)
    assert all(r.insufficient_gold for r in rows)


def test_bt_intervals_cover_the_truth_and_anchor_is_zero() -> None:
    votes = scored(_sim(), {f"random-{i}" for i in range(4)})
    report = bt(votes, NAMES, reference=0, rounds=300)
    assert report is not None
    assert report.strengths["prod"].estimate == 0.0
    for name, truth in zip(NAMES[1:], TRUTH[1:], strict=True):
        iv = report.strengths[name]
        assert iv.low - 0.1 <= truth <= iv.high + 0.1


def test_agreement_is_higher_without_clickers() -> None:
    votes = _sim()
    honest = scored(votes, {f"random-{i}" for i in range(4)})
    assert agreement(honest).alpha > agreement(scored(votes)).alpha


def test_gold_votes_never_count_in_scores() -> None:
    votes = _sim()
    assert not np.any(scored(votes).gold >= 0)
    assert bt(votes.select(votes.gold >= 0), NAMES, reference=0) is None
