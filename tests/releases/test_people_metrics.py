"""Which metric predicts people, where release managers read it: the release report's section and
the leaderboard's "sort by what predicts people" option (both from stored campaign snapshots)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from evalsite.evals.models import ItemResult
from evalsite.releases.models import LeaderboardState
from evalsite.releases.services.leaderboard import leaderboard_refresh
from evalsite.releases.services.reports import release_report_build
from pipelines.metrics.registry import leaderboard_metrics
from ratings.services.reports import campaign_snapshot_refresh
from tests.evals.factories import user_with
from tests.releases.builders import add_votes, build_release_world, world_report

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]
WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture
def rated():
    """People prefer the candidate, which is better on every metric except precision (made to
    favour the baseline on every item): precision must rank last, the others above it."""
    world = build_release_world(loss=None)
    ItemResult.objects.filter(run=world.candidate).update(precision=0.1)
    ItemResult.objects.filter(run=world.baseline).update(precision=0.9)
    campaign, _ = add_votes(world, control=60, candidate_share=0.8)
    campaign_snapshot_refresh(campaign=campaign, rounds=200)
    return world, campaign


def test_the_release_report_ranks_metrics_for_its_campaign_and_the_family(rated) -> None:
    world, campaign = rated
    report = world_report(world, campaign=campaign, enqueue=False)
    payload = release_report_build(report_id=report.pk).payload
    section = payload["people_metrics"]
    stored = campaign.snapshot.payload["metric_agreement"]
    assert section["campaign"]["campaign"] == campaign.pk
    assert section["campaign"]["table"] == stored["table"]  # the page's numbers, as stored
    shares = {r["metric"]: r["share"] for r in section["campaign"]["table"]}
    # people chose the candidate on most decided items: IoU and MAE follow them, precision (and
    # the builder's lower-is-better matting columns, filled with IoU's values) oppose them
    assert shares["iou"] > 0.7 and shares["mae"] > 0.7
    assert shares["precision"] < 0.3 and shares["sad"] < 0.3
    assert section["campaign"]["table"][0]["share"] == max(shares.values())
    family = section["family"]
    assert family["campaigns"] == [campaign.pk] and family["decided"] == stored["decided"]
    assert [r["share"] for r in family["table"]] == pytest.approx(
        [r["share"] for r in stored["table"]]
    )
    assert section["family_instances"] is None
    c = Client()
    c.force_login(user_with("researcher"))
    html = c.get(report.get_absolute_url()).content.decode()
    assert 'id="people-metrics"' in html and "agreed with people on" in html


def test_the_leaderboard_sorts_by_the_metric_that_best_predicts_people(rated) -> None:
    leaderboard_refresh(force=True)
    chosen = LeaderboardState.objects.get().people_metrics["subject-lift"]
    assert chosen["metric"] in {m.name for m in leaderboard_metrics()}
    assert chosen["metric"] != "precision" and chosen["n"] > 0
    c = Client()
    c.force_login(user_with("researcher"))
    url = reverse("releases:leaderboard")
    with CaptureQueriesContext(connection) as queries:
        page = c.get(url, {"family": "subject-lift", "sort": "people"}).content.decode()
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]
    assert all("django_session" in sql for sql in writes), writes
    assert 'id="people-sorted"' in page and f"sorted by {chosen['label']}" in page
    # the candidate (preferred by people) first; by precision the baseline would lead
    assert page.index('data-version="1.1.0"') < page.index('data-version="1.0.0"')
    by_precision = c.get(url, {"family": "subject-lift", "sort": "precision"}).content.decode()
    assert by_precision.index('data-version="1.0.0"') < by_precision.index('data-version="1.1.0"')


def test_without_a_family_or_ratings_the_option_says_why(db) -> None:
    build_release_world(loss=None)
    leaderboard_refresh(force=True)
    c = Client()
    c.force_login(user_with("researcher"))
    url = reverse("releases:leaderboard")
    assert "Pick a family" in c.get(url).content.decode()
    page = c.get(url, {"family": "subject-lift", "sort": "people"})
    assert page.status_code == 200
    assert "no metric can be chosen" in page.content.decode()
