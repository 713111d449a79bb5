"""The stored leaderboard: rebuilt when inputs change, read-only pages, filters, sorting, home."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from evalsite.evals.models import EvalRun
from evalsite.releases.models import LeaderboardRow
from evalsite.releases.services.leaderboard import leaderboard_refresh
from evalsite.releases.services.reports import release_report_build, release_report_create
from tests.evals.factories import user_with
from tests.releases.builders import build_release_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]
WRITES = ("INSERT", "UPDATE", "DELETE")


def _client(role: str = "researcher") -> Client:
    client = Client()
    client.force_login(user_with(role))
    return client


def test_refresh_stores_one_row_per_primary_run_and_skips_when_nothing_changed():
    world = build_release_world(loss=None)
    assert leaderboard_refresh() is True
    rows = {r.version: r for r in LeaderboardRow.objects.all()}
    assert set(rows) == {"1.0.0", "1.1.0"}
    cand = rows["1.1.0"]
    assert cand.run_id == world.candidate.pk and cand.aliases == ["candidate"]
    assert cand.iou == pytest.approx(world.candidate.summary["metrics"]["iou"])
    assert cand.latency_p99 == 30.0 and cand.gated_subject == 0.0
    assert rows["1.0.0"].aliases == ["production"]
    assert cand.crowd == {} and cand.worst_group_iou is None  # "not rated", "—"
    assert leaderboard_refresh() is False  # same fingerprint: nothing recomputed
    EvalRun.objects.filter(pk=world.candidate.pk).update(status="failed")
    assert leaderboard_refresh() is True
    assert set(LeaderboardRow.objects.values_list("version", flat=True)) == {"1.0.0"}


def test_leaderboard_page_reads_stored_rows_and_never_writes():
    build_release_world(loss=None)
    leaderboard_refresh()
    client = _client()
    with CaptureQueriesContext(connection) as queries:
        resp = client.get(reverse("releases:leaderboard"))
    assert resp.status_code == 200
    page = resp.content.decode()
    assert "subject-lift:1.1.0" in page and "not rated" in page
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]
    # The session row may be touched by the auth middleware; nothing else is written.
    assert all("django_session" in sql for sql in writes), writes


def test_filters_and_sorting():
    world = build_release_world(loss=None)
    leaderboard_refresh()
    client = _client()
    base = {"set": world.version.pk}
    page = client.get(reverse("releases:leaderboard"), {**base, "sort": "iou"}).content.decode()
    assert page.index("subject-lift:1.1.0") < page.index("subject-lift:1.0.0")  # better IoU first
    page = client.get(reverse("releases:leaderboard"),
                      {**base, "sort": "iou", "dir": "asc"}).content.decode()  # fmt: skip
    assert page.index("subject-lift:1.0.0") < page.index("subject-lift:1.1.0")
    page = client.get(reverse("releases:leaderboard"),
                      {**base, "family": "other"}).content.decode()  # fmt: skip
    assert "No rows for this filter" in page


def test_home_is_the_leaderboard_with_the_newest_verdict_and_annotators_still_rate():
    world = build_release_world(loss=-0.08)
    report = release_report_create(candidate=world.candidate.model_version,
                                   baseline=world.baseline.model_version,
                                   dataset_versions=[world.version], enqueue=False)  # fmt: skip
    release_report_build(report_id=report.pk)
    leaderboard_refresh()
    page = _client("release_manager").get("/").content.decode()
    assert 'id="newest-verdict"' in page and "fail" in page and "Leaderboard" in page
    assert f'href="/releases/reports/{report.pk}/"' in page
    resp = _client("annotator").get("/")
    assert resp.status_code == 302 and "/rate/" in resp["Location"]


def test_crowd_columns_come_from_the_campaign_snapshot(monkeypatch: Any):
    from django.utils import timezone

    from ratings.models import Campaign, CampaignSnapshot

    world = build_release_world(loss=None)
    campaign = Campaign.objects.create(name="c", dataset_version=world.version)
    campaign.runs.set([world.baseline, world.candidate])
    b, c = world.baseline.pk, world.candidate.pk
    CampaignSnapshot.objects.create(campaign=campaign, computed_at=timezone.now(), dirty=False,
                                    payload={"runs": [f"x · run #{b}", f"y · run #{c}"],
                                             "run_ids": [b, c], "scores": {"all": {
        "strengths": [{"run": "x", "run_id": b, "estimate": 0.0, "low": 0.0, "high": 0.0,
                       "votes": 80, "enough": True, "needed": 30},
                      {"run": "y", "run_id": c, "estimate": 0.4, "low": 0.1, "high": 0.7,
                       "votes": 80, "enough": True, "needed": 30}],
        "pairs": [{"a": "x", "a_id": b, "b": "y", "b_id": c, "votes": 80, "enough": True,
                   "needed": 30, "win": {"estimate": 0.4, "low": 0.3, "high": 0.5},
                   "loss": {"estimate": 0.55, "low": 0.45, "high": 0.65}}]}}})  # fmt: skip
    leaderboard_refresh()
    row = LeaderboardRow.objects.get(run=world.candidate)
    assert row.crowd["strength"]["estimate"] == 0.4
    assert row.crowd["win_rate"]["estimate"] == 0.55  # the candidate is "b": its win = a's loss
    page = _client().get(reverse("releases:leaderboard")).content.decode()
    assert "55.0 %" in page


def test_fairness_columns_come_from_the_stored_fairness_report():
    from evalsite.datasets.models import AttributeRevision
    from evalsite.fairness.models import FairnessReport

    world = build_release_world(loss=None)
    leaderboard_refresh()
    assert LeaderboardRow.objects.get(run=world.candidate).worst_group_iou is None  # "—"
    FairnessReport.objects.create(
        run=world.candidate, attribute_revision=AttributeRevision.objects.get(),
        settings={}, settings_key="default", is_default=True, data={},
        summary={"iou": {
            "worst_group": {"attribute": "skin_tone", "group": "8-10", "mean": 0.41,
                            "ci": [0.35, 0.47]},
            "largest_gap": {"attribute": "skin_tone", "group": "8-10", "gap": -0.12,
                            "gap_ci": [-0.2, -0.05], "flagged": True}}},
    )  # fmt: skip
    assert leaderboard_refresh() is True  # a new fairness report changes the fingerprint
    row = LeaderboardRow.objects.get(run=world.candidate)
    assert (row.worst_group, row.worst_group_iou, row.fairness_gap) == ("Monk 8-10", 0.41, -0.12)
    page = _client().get(reverse("releases:leaderboard")).content.decode()
    assert "Monk 8-10" in page and "-0.120" in page


def test_by_default_the_leaderboard_shows_the_set_the_newest_report_judged_quality_on():
    from tests.releases.builders import add_set

    world = build_release_world(loss=None)
    other = add_set(world)
    for quality in (world.version, other.version):  # the second report is the newest
        report = release_report_create(candidate=world.candidate.model_version,
                                       baseline=world.baseline.model_version,
                                       dataset_versions=[quality], enqueue=False)  # fmt: skip
        release_report_build(report_id=report.pk)
        leaderboard_refresh(force=True)
        page = _client("release_manager").get("/").content.decode()
        assert f'<option value="{quality.pk}" selected' in page, quality.spec
