"""The release report's crowd gate reads the anytime-valid sequence on the control votes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipelines.release import CrowdVotes, crowd_section
from pipelines.release.gates import GateSettings, evaluate_gates
from pipelines.stats.sequential import monitor

SCORE = {0: 1.0, 1: 0.0, 2: 0.5, 3: 0.5}


def _votes(outcomes: list[int], **kw: object) -> CrowdVotes:
    n = len(outcomes)
    strata = np.array(["control", "disagreement"] * (n // 2) + ["control"] * (n % 2))
    return CrowdVotes(campaign=1, items=np.arange(n), outcome=np.array(outcomes),
                      stratum=strata, reasons=[[]] * n, **kw)  # type: ignore[arg-type]  # fmt: skip


def _gate(votes: CrowdVotes, minimum: float = 0.5) -> dict:
    crowd = crowd_section(votes, min_votes=10, rounds=200)
    settings = GateSettings(rounds=200, min_win_rate=minimum, min_votes=10,
                            metric_margins={}, fairness_attributes=())  # fmt: skip
    gates = evaluate_gates(deltas={}, fairness={}, latency=None, crowd=crowd,
                           config_differences=[], settings=settings)  # fmt: skip
    return next(g.as_dict() for g in gates if g.kind == "crowd")


def _stream(n: int, p_candidate: float, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return [0 if rng.random() < p_candidate else 1 for _ in range(n)]


def test_the_gate_passes_on_a_candidate_decision_with_the_sentence() -> None:
    outcomes = _stream(400, 0.8, seed=1)
    votes = _votes(outcomes, alpha=0.05, pairs=3)
    seq = crowd_section(votes, min_votes=10, rounds=200).section["sequential"]
    # The control votes in arrival order, at alpha / pairs: the campaign page's decision.
    control = [SCORE[o] for o, s in zip(outcomes, votes.stratum, strict=True) if s == "control"]
    expected = monitor(np.array(control), 0.05 / 3)
    assert seq["decision"] == "candidate" == expected.decision
    assert seq["stopped_at"] == expected.stopped_at
    gate = _gate(votes)
    assert gate["status"] == "pass" and "p_value" not in gate  # outside Holm
    assert gate["text"].startswith(
        f"candidate preferred — certain at α = 0.05 (Bonferroni over 3 pairs) after "
        f"{expected.stopped_at} votes"
    )
    assert gate["ci"][0] >= 0.5


def test_the_gate_fails_when_the_baseline_is_preferred() -> None:
    gate = _gate(_votes(_stream(400, 0.2, seed=2)))
    assert gate["status"] == "fail" and gate["text"].startswith("baseline preferred")


def test_equal_models_end_as_equivalent_within_the_margin() -> None:
    ties = [2] * 300
    assert _gate(_votes(ties))["status"] == "insufficient"  # no margin: never decided
    gate = _gate(_votes(ties, margin=0.1))
    assert gate["status"] == "pass"
    assert gate["text"].startswith("no difference larger than the margin 0.1")
    assert _gate(_votes(ties, margin=0.1), minimum=0.55)["status"] == "insufficient"


def test_an_open_sequence_is_insufficient_and_says_how_many_more_votes() -> None:
    outcomes = _stream(40, 0.6, seed=3)
    gate = _gate(_votes(outcomes))
    assert gate["status"] == "insufficient"
    assert "no decision yet" in gate["text"]
    seq = crowd_section(_votes(outcomes), min_votes=10, rounds=200).section["sequential"]
    assert seq["decision"] is None and seq["stopped_at"] is None


@pytest.mark.parametrize("seed", range(3))
def test_the_decision_does_not_depend_on_disagreement_votes(seed: int) -> None:
    votes = _votes(_stream(200, 0.75, seed=seed))
    flipped = replace(votes, outcome=np.where(votes.stratum == "control", votes.outcome, 1))
    a = crowd_section(votes, min_votes=10, rounds=100).section["sequential"]
    b = crowd_section(flipped, min_votes=10, rounds=100).section["sequential"]
    assert a == b
