"""The stored campaign report: a burst of ratings schedules one recompute, a rating that lands
during a recompute keeps the report dirty, the numbers equal Bradley–Terry computed from one row
per rating, and the command and the beat sweep recompute what they should."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from pipelines.stats import ItemPairCounts, bradley_terry
from ratings import selectors, tasks
from ratings.models import Campaign, CampaignSnapshot
from ratings.services import reports
from ratings.services.assign import assignment_queue, rating_submit
from tests.ratings.builders import World, open_campaign

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, float | None]]:
    """Recompute messages sent to the broker (campaign id, countdown)."""
    out: list[tuple[Any, float | None]] = []

    def apply_async(args: list[Any], countdown: float | None = None, **kw: Any) -> None:
        out.append((args[0], countdown))

    monkeypatch.setattr(tasks.refresh_campaign_snapshot, "apply_async", apply_async)
    monkeypatch.setattr(tasks.refresh_campaign_snapshot, "delay", lambda cid: out.append((cid, 0)))
    return out


def _campaign(world: World) -> Campaign:
    return open_campaign(world, name="Snapshots", items_per_pair=6, gold_ratio=0.15)


def _rate(world: World, n: int | None = None) -> int:
    done = 0
    for ann in world.annotators:
        while n is None or done < n:
            queue = assignment_queue(user=ann).assignments
            if not queue:
                break
            choice = "left" if queue[0].left_is_a else "right"
            rating_submit(user=ann, token=queue[0].token, choice=choice, seconds=2.0)
            done += 1
    return done


def test_a_burst_of_ratings_schedules_one_recompute_after_the_debounce(
    world: World, sent: list[Any], settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.RATINGS_SNAPSHOT_DEBOUNCE_SECONDS = 7.0
    with django_capture_on_commit_callbacks(execute=True):
        campaign = _campaign(world)
    assert sent == [(campaign.pk, 7.0)]  # the new campaign's first report
    reports.campaign_snapshot_refresh(campaign=campaign, rounds=10)
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert _rate(world, 5) == 5
    assert sent == [(campaign.pk, 7.0)]
    snap = selectors.campaign_snapshot_get(campaign=campaign)
    assert snap is not None and snap.dirty and snap.ratings_count == 0
    reports.campaign_snapshot_refresh(campaign=campaign, rounds=10)
    snap.refresh_from_db()
    assert not snap.dirty and snap.ratings_count == 5 and snap.payload["progress"]["ratings"] == 5


def test_a_rating_during_a_recompute_keeps_the_report_dirty_and_reschedules(
    world: World,
    sent: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    campaign = _campaign(world)
    _rate(world, 2)
    compute = reports.campaign_report_compute

    def slow_compute(**kw: Any) -> dict[str, Any]:
        payload = compute(**kw)
        _rate(world, 1)  # lands after the ratings were read
        return payload

    monkeypatch.setattr(reports, "campaign_report_compute", slow_compute)
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        snap = reports.campaign_snapshot_refresh(campaign=campaign, rounds=10)
    assert snap.dirty and snap.ratings_count == 2 and snap.computed_at is not None
    assert sent and all(cid == campaign.pk for cid, _ in sent)
    monkeypatch.setattr(reports, "campaign_report_compute", compute)
    snap = reports.campaign_snapshot_refresh(campaign=campaign, rounds=10)
    assert not snap.dirty and snap.ratings_count == 3


def test_stored_strengths_equal_bradley_terry_from_one_row_per_rating(
    world: World, settings: Any
) -> None:
    settings.RATINGS_MIN_PAIR_VOTES = 1
    campaign = _campaign(world)
    rng = np.random.default_rng(0)
    for ann in world.annotators:
        while queue := assignment_queue(user=ann).assignments:
            choice = ["left", "right", "tie", "both_bad"][int(rng.integers(0, 4))]
            rating_submit(user=ann, token=queue[0].token, choice=choice)
    payload = reports.campaign_snapshot_refresh(campaign=campaign, rounds=200).payload
    rows = [r for r in selectors.rating_rows(campaign) if r["task__stratum"] != "gold"]
    runs = [r.pk for r in selectors.campaign_runs(campaign)]
    code = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}
    counts = ItemPairCounts.from_votes(
        [r["task__item_id"] for r in rows],
        [runs.index(r["task__run_a_id"]) for r in rows],
        [runs.index(r["task__run_b_id"]) for r in rows],
        [code[r["outcome"]] for r in rows],
        n_models=len(runs),
    )
    ref = runs.index(campaign.reference_run_id)
    direct = bradley_terry(counts, payload["runs"], reference=ref, rounds=200, seed=campaign.seed)
    stored = payload["scores"]["all"]
    assert stored["votes"] == direct.votes == len(rows)
    for row in stored["strengths"]:
        iv = direct.strengths[row["run"]]
        assert (row["estimate"], row["low"], row["high"]) == pytest.approx(
            (iv.estimate, iv.low, iv.high)
        )
    both_bad = sum(r["outcome"] == "both_bad" for r in rows) / len(rows)
    assert payload["both_bad_rate"]["all"] == pytest.approx(both_bad)


def test_the_command_recomputes_named_or_dirty_campaigns_and_names_unknown_ids(
    world: World,
) -> None:
    campaign = _campaign(world)
    _rate(world, 3)
    out = StringIO()
    call_command("refresh_campaign_reports", "--dirty", stdout=out)
    assert f"campaign {campaign.pk} (Snapshots): 3 ratings" in out.getvalue()
    out = StringIO()
    call_command("refresh_campaign_reports", "--dirty", stdout=out)
    assert out.getvalue() == ""  # nothing new
    with pytest.raises(CommandError, match="no campaign with id 999"):
        call_command("refresh_campaign_reports", "999")


def test_the_beat_sweep_resends_reports_left_dirty_too_long(
    world: World, sent: list[Any], settings: Any
) -> None:
    settings.RATINGS_SNAPSHOT_STALE_SECONDS = 60
    campaign = _campaign(world)
    sent.clear()
    assert tasks.refresh_dirty_snapshots() == 0  # dirty, but only just
    CampaignSnapshot.objects.filter(campaign=campaign).update(
        dirty_since=timezone.now() - timedelta(seconds=61)
    )
    assert tasks.refresh_dirty_snapshots() == 1 and sent == [(campaign.pk, 0)]
    assert tasks.refresh_campaign_snapshot(campaign.pk).startswith("0 ratings")
    assert tasks.refresh_campaign_snapshot(10**6) == "no such campaign"


def test_a_refresh_lost_with_its_worker_is_redone_within_a_minute_by_default() -> None:
    from django.conf import settings as live

    sweep = live.CELERY_BEAT_SCHEDULE["refresh-stale-campaign-reports"]["schedule"]
    # a snapshot dirty past STALE is resent by the next sweep at the latest
    assert live.RATINGS_SNAPSHOT_STALE_SECONDS + sweep <= 60
    assert live.RATINGS_SNAPSHOT_STALE_SECONDS > 2 * live.RATINGS_SNAPSHOT_DEBOUNCE_SECONDS


def test_the_campaign_list_counts_tasks_and_ratings_per_campaign(world: World) -> None:
    campaign = _campaign(world)
    _rate(world, 4)
    empty = _campaign(world)
    rows = {c.pk: (c.n_tasks, c.n_ratings) for c in selectors.campaign_rows()}
    assert rows[campaign.pk] == (campaign.tasks.count(), 4)
    assert rows[empty.pk] == (empty.tasks.count(), 0)
