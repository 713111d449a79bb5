"""Annotators racing for the same slots from several threads (own DB connections): no task ever
gets more than k live claims, nobody holds a task twice, every submit is stored exactly once; one
annotator's racing lease POSTs (tabs, double clicks) lease once. Runs on SQLite (write lock via
conditional UPDATE) and on PostgreSQL (FOR UPDATE SKIP LOCKED, advisory lock per annotator)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from evalsite.core.services import user_ensure
from ratings.models import Assignment, Rating, Task
from ratings.services.assign import QUEUE_DEPTH, assignment_queue, rating_submit
from ratings.services.campaigns import campaign_create
from tests.ratings.builders import build_world, open_campaign
from tests.threads import run_in_threads

pytestmark = pytest.mark.no_services
THREADS = 8


def _race(target: Any, users: list[Any]) -> list[BaseException]:
    return run_in_threads(target, users, together=True, timeout=120)


def test_racing_annotators_never_exceed_k_and_never_duplicate(
    transactional_db: Any, tmp_path: Path
) -> None:
    world = build_world(tmp_path, n=6, annotators=1)
    campaign = open_campaign(world, name="race", items_per_pair=3, overlap=2)
    users = [
        user_ensure(username=f"racer{i}", password="pw", roles=["annotator"])
        for i in range(THREADS)
    ]
    assert _race(lambda u: assignment_queue(user=u), users) == []
    for task in Task.objects.filter(campaign=campaign):
        assert task.assignments.count() <= 2
    for user in users:  # a claimer that only met locked rows gets its share on the next call
        assignment_queue(user=user)
    assert Assignment.objects.count() == 6  # 3 tasks × k = 2, all taken
    for task in Task.objects.filter(campaign=campaign):
        assert task.assignments.count() == 2

    def submit_twice(user: Any) -> None:
        for a in Assignment.objects.filter(annotator=user):
            rating_submit(user=user, token=a.token, choice="left")
            rating_submit(user=user, token=a.token, choice="right")

    assert _race(submit_twice, users) == []
    assert Rating.objects.count() == 6
    assert Rating.objects.filter(shown_choice="left").count() == 6
    pairs = Rating.objects.values_list("task", "annotator")
    assert len(set(pairs)) == 6


def test_one_annotators_racing_lease_posts_lease_once(
    transactional_db: Any, tmp_path: Path
) -> None:
    """THREADS lease POSTs (and start-form POSTs) of one annotator at once: the annotator ends up
    holding QUEUE_DEPTH assignments, and every answer shows the same current task."""
    world = build_world(tmp_path, n=12, annotators=1)
    open_campaign(world, name="tabs", items_per_pair=12, overlap=1)
    ann = world.annotators[0]
    clients = {}
    for i in range(THREADS):
        clients[i] = Client()
        clients[i].force_login(ann)
    answers: list[Any] = []

    def lease(i: int) -> None:
        if i % 2:
            answers.append(clients[i].post("/rate/api/lease").json()["current"]["token"])
        else:
            assert clients[i].post("/rate/start/").status_code == 303

    assert _race(lease, list(range(THREADS))) == []
    held = list(Assignment.objects.filter(annotator=ann).values_list("token", flat=True))
    assert len(held) == QUEUE_DEPTH
    assert set(answers) == {held[0]}


def test_two_ratings_marking_the_report_dirty_at_once_schedule_one_recompute(
    transactional_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forced interleaving: A flips the report dirty inside an open transaction (holding the row,
    or SQLite's write lock); B marks it while A is open, waits, then finds it dirty already."""
    from django.db import transaction

    from ratings.models import CampaignSnapshot
    from ratings.services import reports

    world = build_world(tmp_path, n=4, annotators=1)
    campaign = campaign_create(
        name="debounce", dataset_version=world.version, runs=world.runs, items_per_pair=2
    )
    CampaignSnapshot.objects.filter(campaign=campaign).update(dirty=False, generation=0)
    scheduled: list[int] = []
    monkeypatch.setattr(reports, "_schedule", lambda cid, countdown: scheduled.append(cid))
    a_marked, b_started = threading.Event(), threading.Event()
    results: dict[str, bool] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                results["a"] = reports.campaign_snapshot_mark_dirty(campaign_id=campaign.pk)
                a_marked.set()
                b_started.wait(timeout=10)
                threading.Event().wait(0.3)  # B is now blocked on A's lock
        finally:
            connection.close()

    def second() -> None:
        try:
            a_marked.wait(timeout=10)
            b_started.set()
            results["b"] = reports.campaign_snapshot_mark_dirty(campaign_id=campaign.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    snap = CampaignSnapshot.objects.get(campaign=campaign)
    assert results == {"a": True, "b": False}
    assert scheduled == [campaign.pk]
    assert snap.dirty and snap.generation == 2


def test_racing_annotators_never_claim_past_the_vote_budget(
    transactional_db: Any, tmp_path: Path
) -> None:
    """THREADS annotators lease at once in an until-decided campaign with 5 votes of budget and
    16 free slots: the budget count and the claim are one step (campaign row locked on
    PostgreSQL, SQLite's write lock), so exactly 5 slots are taken, never more."""
    world = build_world(tmp_path, n=8, annotators=1)
    campaign = open_campaign(
        world, name="budget", items_per_pair=8, overlap=2, stopping="until_decided", vote_budget=5
    )
    users = [
        user_ensure(username=f"budget{i}", password="pw", roles=["annotator"])
        for i in range(THREADS)
    ]
    assert _race(lambda u: assignment_queue(user=u, campaign=campaign), users) == []
    for user in users:  # a claimer that only met locked rows tries again
        assignment_queue(user=user, campaign=campaign)
    assert Assignment.objects.filter(campaign=campaign).count() == 5
