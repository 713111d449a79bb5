"""Simulated raters: the documented rule, votes through the rating service, labels everywhere, and
the demo's campaign step (strata, QC catching the clickers, idempotent, room for people)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db.models import Count
from django.test import Client
from django.urls import reverse

from models.models import CANDIDATE, Alias
from pipelines.stats.simulated_raters import (
    clicker_answer,
    prefer_a_probability,
    scripted_answer,
    shown_choice,
)
from ratings.models import Campaign, Rating, Stratum, Task
from ratings.selectors import campaign_snapshot_get
from ratings.services.assign import assignment_queue, rating_submit
from ratings.services.campaigns import campaign_create
from ratings.services.simulated import simulated_rater_ensure, simulated_votes_seed
from tests.ratings.builders import World, build_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def test_scripted_rule_is_seeded_prefers_the_higher_iou_and_ties_close_pairs() -> None:
    def answers(iou_a: float, iou_b: float, seed: int) -> list[str]:
        return [scripted_answer(iou_a, iou_b, seed=seed, rater=1, task=t) for t in range(2000)]

    assert answers(0.7, 0.6, seed=5) == answers(0.7, 0.6, seed=5)
    assert answers(0.7, 0.6, seed=5) != answers(0.7, 0.6, seed=6)
    share_a = answers(0.7, 0.6, seed=5).count("a") / 2000
    expected = prefer_a_probability(0.7, 0.6)  # sigmoid(0.1 / 0.05) = 0.88
    assert abs(expected - 0.881) < 0.001 and abs(share_a - expected) < 0.03
    share_b = answers(0.3, 0.8, seed=5).count("b") / 2000  # a gross failure: nearly always B
    assert share_b > 0.99
    assert set(answers(0.51, 0.5, seed=5)) == {"tie"}  # within the 0.02 margin
    assert scripted_answer(None, 0.5, seed=1, rater=0, task=0) == "both_bad"


def test_clickers_answer_at_random_and_the_shown_side_follows_the_assignment() -> None:
    picks = [clicker_answer(seed=3, rater=4, task=t) for t in range(3000)]
    shares = [picks.count(x) / 3000 for x in ("a", "b", "tie")]
    assert all(abs(s - 1 / 3) < 0.03 for s in shares)
    assert shown_choice("a", left_is_a=True) == "left"
    assert shown_choice("a", left_is_a=False) == "right"
    assert shown_choice("b", left_is_a=False) == "left"
    assert shown_choice("tie", left_is_a=False) == "tie"
    with pytest.raises(ValueError, match="unknown answer"):
        shown_choice("c", left_is_a=True)


def test_gold_is_reserved_before_the_disagreement_pick(db: Any, tmp_path: Path) -> None:
    # Every item is taken by some stratum; the gross failures (even items) are also the most
    # divergent, so drawing disagreement (or control) first left gold empty. Gold now goes first:
    # round(0.15 * 16 / 0.85) = 3 gold, then control and disagreement split the 13 left.
    world = build_world(tmp_path, n=16)
    campaign = campaign_create(
        name="c", dataset_version=world.version, runs=world.runs, items_per_pair=16,
        disagreement_share=0.5, gold_ratio=0.15, seed=1,
    )  # fmt: skip
    by = {s: Task.objects.filter(campaign=campaign, stratum=s).count() for s in Stratum.values}
    assert by[Stratum.GOLD] == 3
    assert by[Stratum.CONTROL] == 7 and by[Stratum.DISAGREEMENT] == 6
    for task in Task.objects.filter(campaign=campaign, stratum=Stratum.GOLD):
        assert task.gold_winner == "a"


def test_only_users_marked_simulated_can_be_seeded(world: World) -> None:
    campaign = campaign_create(
        name="c", dataset_version=world.version, runs=world.runs, open_now=True
    )
    with pytest.raises(ValueError, match="not marked simulated: ann0"):
        simulated_votes_seed(campaign=campaign, scripted=[world.annotators[0]])
    rater = simulated_rater_ensure(username="sim-x")
    assert not rater.has_usable_password()  # nobody signs in as a simulated rater
    assert simulated_rater_ensure(username="sim-x").pk == rater.pk


def _demo_world(tmp_path: Path) -> World:
    from ratings import demo

    world = build_world(tmp_path, n=40, name=demo.DEMO_SET)
    candidate = world.runs[1].model_version
    Alias.objects.create(family=candidate.family, name=CANDIDATE, version=candidate)
    return world


def test_demo_step_seeds_simulated_votes_that_qc_checks_and_pages_label(
    db: Any, tmp_path: Path, settings: Any
) -> None:
    from ratings import demo

    world = _demo_world(tmp_path)
    lines: list[str] = []
    demo.after_start(lines.append)
    campaign = Campaign.objects.get()
    # The pair the release report compares: candidate (run 1) vs production (run 0).
    assert sorted(campaign.runs.values_list("pk", flat=True)) == [r.pk for r in world.runs]
    tasks = Task.objects.filter(campaign=campaign)
    strata = {s: tasks.filter(stratum=s).count() for s in Stratum.values}
    # 40 items: 7 gold reserved first (15 % of the tasks), control and disagreement split the 33
    assert strata[Stratum.GOLD] == 7
    assert strata[Stratum.CONTROL] == 17 and strata[Stratum.DISAGREEMENT] == 16
    assert strata[Stratum.GOLD] >= campaign.min_gold
    raters = len(demo.SCRIPTED_RATERS) + len(demo.RANDOM_CLICKERS)
    plain = tasks.exclude(stratum=Stratum.GOLD).count()
    assert Rating.objects.exclude(task__stratum=Stratum.GOLD).count() == raters * plain
    # Gold is served next to plain work (first task gold, then every other one up to min_gold,
    # then at the gold share): every rater is scored on at least min_gold of it.
    gold_done = Rating.objects.filter(task__stratum=Stratum.GOLD).values("annotator")
    per_rater = gold_done.annotate(n=Count("pk")).values_list("n", flat=True)
    assert len(per_rater) == raters and min(per_rater) >= campaign.min_gold
    control_votes = Rating.objects.filter(campaign=campaign, task__stratum=Stratum.CONTROL)
    scripted_control = control_votes.filter(annotator__username__in=demo.SCRIPTED_RATERS)
    assert scripted_control.count() >= 50  # GateSettings.min_votes, even with clickers excluded

    report = campaign_snapshot_get(campaign=campaign).payload  # type: ignore[union-attr]
    assert sorted(report["qc"]["flagged"]) == sorted(demo.RANDOM_CLICKERS)
    assert sorted(report["qc"]["excluded"]) == sorted(demo.RANDOM_CLICKERS)
    assert report["simulated"]["annotators"] == sorted(demo.SCRIPTED_RATERS + demo.RANDOM_CLICKERS)
    assert all(row["simulated"] for row in report["qc"]["annotators"])

    # Idempotent: a second start reuses the campaign and adds no vote.
    before = Rating.objects.count()
    demo.after_start(lines.append)
    assert Campaign.objects.count() == 1 and Rating.objects.count() == before
    assert any("reusing" in line for line in lines)

    # A newcomer still gets tasks, and their rating counts next to the simulated ones.
    newcomer = world.annotators[0]
    queue = assignment_queue(user=newcomer, campaign=campaign)
    assert queue.assignments
    rating_submit(user=newcomer, token=queue.assignments[0].token, choice="left")
    from ratings.services.reports import campaign_snapshot_refresh

    report = campaign_snapshot_refresh(campaign=campaign).payload
    people = [a for a in report["progress"]["annotators"] if not a["simulated"]]
    assert [a["annotator__username"] for a in people] == [newcomer.username]

    client = Client()
    client.force_login(world.researcher)
    page = client.get(reverse("ratings:campaign", args=[campaign.pk])).content.decode()
    assert page.count('badge synthetic simulated"') >= 2 * raters  # progress + QC tables
    assert f"{report['simulated']['ratings']} of {report['progress']['ratings']} ratings" in page
    body = client.get(reverse("ratings:export", args=[campaign.pk, "csv"])).content.decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    marks = {r["annotator"]: r["simulated"] for r in rows}
    assert marks[newcomer.username] == "False"
    assert {marks[name] for name in demo.SCRIPTED_RATERS + demo.RANDOM_CLICKERS} == {"True"}


def test_scripted_raters_prefer_the_run_closer_to_the_truth(db: Any, tmp_path: Path) -> None:
    from ratings import demo

    _demo_world(tmp_path)
    demo.after_start(lambda _line: None)
    votes = Rating.objects.filter(
        annotator__username__in=demo.SCRIPTED_RATERS, task__iou_a__gt=0.9, task__iou_b__lt=0.5
    )
    outcomes = np.array([v.outcome for v in votes])
    assert len(outcomes) > 20 and np.mean(outcomes == "a") > 0.95  # run 0 outputs the truth
