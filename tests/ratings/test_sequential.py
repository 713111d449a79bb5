"""Until-decided campaigns: the snapshot's anytime-valid decisions, decided pairs no longer served,
the vote budget, sides drawn from the seed, gold early."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evalsite.core.services import user_ensure
from pipelines.stats.sequential import monitor
from ratings.models import Assignment, PairState, Rating, Stratum, Task
from ratings.services.assign import assignment_queue, rating_submit
from ratings.services.campaigns import campaign_create
from ratings.services.reports import campaign_snapshot_refresh
from ratings.services.serving import side_left_is_a
from tests.ratings.builders import World, build_world, open_campaign

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def _until_decided(world: World, **kw: Any):  # type: ignore[no-untyped-def]
    args: dict[str, Any] = {
        "name": "u",
        "dataset_version": world.version,
        "runs": world.runs,
        "items_per_pair": 8,
        "disagreement_share": 0.0,
        "gold_ratio": 0.0,
        "overlap": 3,
        "stopping": "until_decided",
        "open_now": True,
        **kw,
    }
    return campaign_create(**args)


def _answer(assignment: Assignment, production: int, rival: int) -> str:
    """Production (run 0) always wins on the pair with run 1; every other pair is a tie."""
    task = assignment.task
    if {task.run_a_id, task.run_b_id} != {production, rival}:
        return "tie"
    production_left = (task.run_a_id == production) == assignment.left_is_a
    return "left" if production_left else "right"


def _rate(world: World, user: Any, campaign: Any, n: int) -> list[Assignment]:
    """Rate up to n tasks as `user`; the assignments rated, in order."""
    rated = []
    for _ in range(n):
        queue = assignment_queue(user=user, campaign=campaign).assignments
        if not queue:
            break
        a = queue[0]
        rating_submit(
            user=user, token=a.token, choice=_answer(a, world.runs[0].pk, world.runs[1].pk)
        )
        rated.append(a)
    return rated


def test_the_snapshot_decides_from_control_votes_in_arrival_order(db: Any, tmp_path: Path) -> None:
    world = build_world(tmp_path, n=8, annotators=3)
    campaign = _until_decided(world, stopping="fixed", runs=world.runs[:2])
    for user in world.annotators:
        _rate(world, user, campaign, 8)
    section = campaign_snapshot_refresh(campaign=campaign, rounds=20).payload["sequential"]
    (pair,) = section["pairs"]
    # Production is the reference, so it is the pair's baseline and wins every vote.
    assert pair["baseline_id"] == world.runs[0].pk and pair["candidate_id"] == world.runs[1].pk
    stream = np.zeros(Rating.objects.filter(task__stratum=Stratum.CONTROL).count())
    expected = monitor(stream, 0.05)
    assert pair["decision"] == "baseline" == expected.decision
    assert pair["stopped_at"] == expected.stopped_at and pair["votes"] == 24
    assert pair["winner_id"] == world.runs[0].pk
    assert pair["text"].startswith("subject-lift 1.0.0 [production]")
    assert f"certain at α = 0.05 after {expected.stopped_at} votes" in pair["text"]
    # A fixed plan spends every vote: nothing saved beyond what is left of it (here nothing).
    assert (pair["plan"], pair["used"], pair["saved"]) == (24, 24, 0)
    state = PairState.objects.get(campaign=campaign)
    assert state.decision == "baseline" and state.priority == 0.0


def test_a_decided_pair_gets_no_more_tasks_and_open_pairs_still_do(db: Any, tmp_path: Path) -> None:
    # Given three runs (three pairs) and a campaign that runs until decided
    world = build_world(tmp_path, n=8, runs=3, annotators=6)
    campaign = _until_decided(world)
    decided_pair = (world.runs[0].pk, world.runs[1].pk)
    # When enough votes arrive for production to win its pair with run 1, and a recompute runs:
    # annotators rate in turns until that pair holds more than the 10 control votes the monitor
    # needs at α = 0.05 (which pair a task comes from follows the seed and the ids, so a fixed
    # number of ratings each can leave the pair short)
    pair_votes = Rating.objects.filter(campaign=campaign, task__run_a__in=decided_pair,
                                       task__run_b__in=decided_pair)  # fmt: skip
    for _ in range(12):
        for user in world.annotators:
            _rate(world, user, campaign, 1)
        if pair_votes.count() >= 12:
            break
    section = campaign_snapshot_refresh(campaign=campaign, rounds=20).payload["sequential"]
    by_pair = {(p["a_id"], p["b_id"]): p for p in section["pairs"]}
    assert by_pair[decided_pair]["decision"] == "baseline"
    assert by_pair[decided_pair]["saved"] == 24 - by_pair[decided_pair]["used"] > 0
    assert all(p["decision"] is None for k, p in by_pair.items() if k != decided_pair)
    # Then a newcomer is handed tasks of the open pairs only, until they run out
    newcomer = user_ensure(username="newcomer", password="pw", roles=["annotator"])
    before = Assignment.objects.filter(task__run_a=decided_pair[0], task__run_b=decided_pair[1])
    count = before.count()
    rated = _rate(world, newcomer, campaign, 100)
    assert rated
    assert all((a.task.run_a_id, a.task.run_b_id) != decided_pair for a in rated)
    assert before.count() == count
    # Expired leases and leftover slots of the decided pair are never reopened
    open_slots = Task.objects.filter(campaign=campaign, run_a=decided_pair[0],
                                     run_b=decided_pair[1])  # fmt: skip
    assert any(t.assignments.count() < 3 for t in open_slots)


def test_the_vote_budget_stops_hand_outs(db: Any, tmp_path: Path) -> None:
    world = build_world(tmp_path, n=8, annotators=3)
    campaign = _until_decided(world, vote_budget=5)
    for user in world.annotators:
        _rate(world, user, campaign, 8)
    assert Rating.objects.filter(campaign=campaign).count() == 5
    assert not assignment_queue(user=world.annotators[0], campaign=campaign).assignments
    section = campaign_snapshot_refresh(campaign=campaign, rounds=20).payload["sequential"]
    assert section["plan"] == 5 and section["votes_used"] == 5


def test_sides_are_drawn_from_the_seed_per_task_and_annotator(world: World) -> None:
    campaign = _until_decided(world, stopping="fixed", seed=7)
    user = world.annotators[0]
    queue = assignment_queue(user=user, campaign=campaign).assignments
    for a in queue:
        assert a.left_is_a == side_left_is_a(
            seed=7, task_order=a.task.order, annotator=user.username
        )
    draws = [
        side_left_is_a(seed=7, task_order=t, annotator=f"a{a}") for t in range(50) for a in range(4)
    ]
    assert 70 < sum(draws) < 130  # a fair coin over 200 draws (p ≈ 0.996 of landing here)
    assert draws != [side_left_is_a(seed=8, task_order=t, annotator=f"a{a}")
                     for t in range(50) for a in range(4)]  # fmt: skip


def test_each_annotator_gets_gold_first_and_early_beyond_k(db: Any, tmp_path: Path) -> None:
    # Given 2 gold tasks with k = 1: gold is not held to k, so every annotator is scored
    world = build_world(tmp_path, n=24, annotators=3)
    campaign = open_campaign(world, name="g", items_per_pair=12, gold_ratio=0.15, overlap=1)
    assert Task.objects.filter(campaign=campaign, stratum=Stratum.GOLD).count() == 2
    for user in world.annotators:
        strata = [a.task.stratum for a in _rate(world, user, campaign, 4)]
        # first task gold, then every other one until min_gold (10) or the gold runs out
        assert strata[0] == Stratum.GOLD and strata[2] == Stratum.GOLD
        assert strata[1] != Stratum.GOLD and strata[3] != Stratum.GOLD


def test_habits_flag_a_left_clicker_and_a_contrarian_for_review(db: Any, tmp_path: Path) -> None:
    from scipy.stats import binomtest

    # 48 items: the consensus is a per-pair model (not per item), so half of a contrarian's votes
    # (the equal items) look ordinary; with 24 items a third of side draws left it unflagged.
    world = build_world(tmp_path, n=48, annotators=7)
    campaign = open_campaign(world, name="h", items_per_pair=48, overlap=7)
    honest = world.annotators[:5]
    left_clicker, contrarian = world.annotators[5:]
    for user in world.annotators:
        while queue := assignment_queue(user=user, campaign=campaign).assignments:
            a = queue[0]
            iou_a, iou_b = a.task.iou_a, a.task.iou_b
            if user == left_clicker:
                choice = "left"
            elif abs(iou_a - iou_b) < 0.02:  # run 1 equals the truth on odd items
                choice = "tie" if user in honest else ("left" if a.left_is_a else "right")
            else:
                better_is_a = (iou_a > iou_b) != (user == contrarian)
                choice = "left" if better_is_a == a.left_is_a else "right"
            rating_submit(user=user, token=a.token, choice=choice)
    habits = campaign_snapshot_refresh(campaign=campaign, rounds=20).payload["habits"]
    assert habits["side"]["flagged"] == [left_clicker.username]
    assert contrarian.username in habits["improbable"]["flagged"]
    assert not set(habits["improbable"]["flagged"]) & {u.username for u in honest}
    # The crowd's share and p-value match scipy on the stored choices.
    shown = list(Rating.objects.values_list("shown_choice", flat=True))
    left, decisive = shown.count("left"), shown.count("left") + shown.count("right")
    crowd = habits["side"]["crowd"]
    assert (crowd["left"], crowd["decisive"]) == (left, decisive)
    assert crowd["p_value"] == pytest.approx(binomtest(left, decisive, 0.5).pvalue)
    assert habits["bt_side"]["strengths"][0]["estimate"] == 0.0  # production anchors at 0
    assert habits["bt_side"]["strengths"][1]["estimate"] < 0  # run 1 misses on even items
    # Nobody is dropped: every rating still counts in the scores.
    assert habits["bt_side"]["votes"] == Rating.objects.count()
