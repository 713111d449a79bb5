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
from evalsite.releases.services.reports import release_report_build
from tests.evals.factories import user_with
from tests.releases.builders import add_votes, build_release_world, world_report

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
    report = world_report(world, enqueue=False)
    release_report_build(report_id=report.pk)
    leaderboard_refresh()
    page = _client("release_manager").get("/").content.decode()
    assert 'id="newest-verdict"' in page and "fail" in page and "Leaderboard" in page
    assert f'href="/releases/reports/{report.pk}/"' in page
    resp = _client("annotator").get("/")
    assert resp.status_code == 302 and "/rate/" in resp["Location"]


def _stored_pair(payload: dict[str, Any], a: int, b: int) -> dict[str, Any]:
    return next(p for p in payload["scores"]["all"]["pairs"] if {p["a_id"], p["b_id"]} == {a, b})


def test_crowd_columns_come_from_the_snapshot_the_ratings_job_stored():
    """Producer and consumer together: real ratings, the real snapshot job, the real refresh."""
    from ratings.services.reports import campaign_snapshot_refresh

    world = build_release_world(loss=None)
    campaign, _ = add_votes(world, control=80, candidate_share=0.8)
    stored = campaign_snapshot_refresh(campaign=campaign, rounds=200).payload
    assert leaderboard_refresh() is True  # a new snapshot changes the fingerprint
    row = LeaderboardRow.objects.get(run=world.candidate)
    c, b = world.candidate.pk, world.baseline.pk
    strength = next(s for s in stored["scores"]["all"]["strengths"] if s["run_id"] == c)
    assert row.crowd["campaign"] == campaign.pk and row.crowd["votes"] == 80
    assert row.crowd["strength"] == {k: strength[k] for k in ("estimate", "low", "high")}
    pair = _stored_pair(stored, c, b)
    win = pair["win"] if pair["a_id"] == c else pair["loss"]  # the candidate's side of the pair
    assert row.crowd["win_rate"] == win and win["estimate"] > 0.5  # it won about 80 % of votes
    assert row.crowd["note"] == ""
    assert LeaderboardRow.objects.get(run=world.baseline).crowd["win_rate"] is None  # production
    page = _client().get(reverse("releases:leaderboard")).content.decode()
    assert f"{100 * win['estimate']:.1f} %" in page


def test_crowd_numbers_on_too_few_votes_say_so_instead_of_a_rate():
    from ratings.services.reports import campaign_snapshot_refresh

    world = build_release_world(loss=None)
    campaign, _ = add_votes(world, control=12, candidate_share=0.8)
    campaign_snapshot_refresh(campaign=campaign, rounds=200)
    leaderboard_refresh()
    crowd = LeaderboardRow.objects.get(run=world.candidate).crowd
    assert crowd["note"] == "not enough votes (12 of 30)"
    assert crowd["strength"] is None and crowd["win_rate"] is None
    page = _client().get(reverse("releases:leaderboard")).content.decode()
    assert "not enough votes (12 of 30)" in page


def test_fairness_columns_come_from_the_report_the_fairness_job_stored():
    """Producer and consumer together: the real fairness report, the real refresh."""
    from evalsite.fairness.services import fairness_report_compute
    from pipelines.fairness import display_group

    world = build_release_world(n=120, loss=-0.2)  # worse on Monk 8-10 (36 images)
    leaderboard_refresh()
    assert LeaderboardRow.objects.get(run=world.candidate).worst_group_iou is None  # "—"
    report = fairness_report_compute(run=world.candidate)
    assert leaderboard_refresh() is True  # a new fairness report changes the fingerprint
    iou = report.data["summary"]["iou"]
    worst = iou["worst_group"]
    assert report.summary == report.data["summary"] and "8-10" in worst["group"]
    shown = display_group(worst["attribute"], worst["group"])
    row = LeaderboardRow.objects.get(run=world.candidate)
    assert (row.worst_group, row.worst_group_iou, row.fairness_gap) == (
        shown, worst["mean"], iou["largest_gap"]["gap"])  # fmt: skip
    page = _client().get(reverse("releases:leaderboard")).content.decode()
    assert shown in page and f"{iou['largest_gap']['gap']:.3f}" in page
    fairness_page = _client().get(f"/fairness/runs/{world.candidate.pk}/").content.decode()
    assert shown in fairness_page


def test_by_default_the_leaderboard_shows_the_set_the_newest_report_judged_quality_on():
    from tests.releases.builders import add_set

    world = build_release_world(loss=None)
    other = add_set(world)
    for quality in (world.version, other.version):  # the second report is the newest
        report = world_report(world, dataset_versions=[quality], enqueue=False)
        release_report_build(report_id=report.pk)
        leaderboard_refresh(force=True)
        page = _client("release_manager").get("/").content.decode()
        assert f'<option value="{quality.pk}" selected' in page, quality.spec
