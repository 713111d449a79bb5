"""Release reports through every door: service + job, CLI exit codes, REST API, decisions,
immutability, offline HTML and CSV exports."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from evalsite.core.models import Chunk
from evalsite.releases.errors import ReleaseError
from evalsite.releases.export import render_export
from evalsite.releases.models import GateConfig, ReleaseDecision, ReleaseReport
from evalsite.releases.services.reports import release_report_build
from models.models import PRODUCTION, Alias, AliasMove
from models.services import api_token_create
from tests.evals.factories import client_as, user_with
from tests.releases.builders import add_votes, build_release_world, world_report

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exc:
        call_command("release_report", *args, stdout=out, stderr=err)
    return int(exc.value.code or 0), out.getvalue(), err.getvalue()


def _args(world: Any) -> list[str]:
    return ["--candidate", "subject-lift:candidate", "--dataset", world.version.spec]


def _report_page(report: ReleaseReport) -> str:
    """The report's page as a researcher sees it."""
    response = client_as("researcher").get(reverse("releases:report", args=[report.pk]))
    return response.content.decode()


def _queued_and_claimed(world: Any, capture: Any) -> tuple[ReleaseReport, Chunk]:
    """The world's report queued (its message not sent) and its one chunk, claimed as a worker
    would claim it."""
    from evalsite.core import jobs

    with capture(execute=False):
        report = world_report(world)
    claimed = jobs.chunk_claim(chunk_id=Chunk.objects.get(job=report.job).pk, worker="test")
    assert claimed is not None
    return report, claimed


def test_cli_fails_the_fairness_gate_naming_the_group_and_exits_3(tmp_path: Path):
    world = build_release_world(loss=-0.08)
    out_json = tmp_path / "r.json"
    code, out, _ = _cli(*_args(world), "--json", str(out_json))
    assert code == 3
    payload = json.loads(out_json.read_text())
    gates = {g["name"]: g for g in payload["gates"]}
    assert gates["fairness: skin tone"]["status"] == "fail"
    assert gates["fairness: skin tone"]["group"] == "8-10"
    assert gates["IoU non-inferiority"]["status"] == "pass"
    assert payload["baseline"] == "subject-lift:1.0.0"  # default baseline: production
    assert "[fail] fairness: skin tone" in out and "Monk 8-10" in out


def test_cli_better_everywhere_passes_quality_and_fairness(tmp_path: Path):
    world = build_release_world(loss=None)
    code, out, _ = _cli(*_args(world))
    assert code == 4  # default gates want crowd votes; nothing fails
    report = ReleaseReport.objects.get()
    for g in report.payload["gates"]:
        if g["kind"] in ("metric", "fairness"):
            assert g["status"] == "pass", g
    GateConfig.objects.create(family=world.candidate.model_version.family, min_win_rate=None,
                              min_votes=0)  # fmt: skip
    code, out, _ = _cli(*_args(world))
    assert code == 0 and "ready to ship" in out


def test_cli_says_why_and_exits_1_when_a_version_has_no_run():
    world = build_release_world()
    code, _, err = _cli("--candidate", "subject-lift:candidate", "--baseline", "subject-lift:9.9.9",
                        "--dataset", world.version.spec)  # fmt: skip
    assert code == 1 and "no version '9.9.9'" in err
    from evalsite.evals.models import EvalRun

    EvalRun.objects.filter(pk=world.baseline.pk).update(status="failed")
    code, _, err = _cli(*_args(world))
    assert code == 1 and "has no finished run" in err and "run_eval" in err


def test_crowd_section_with_votes_and_below_the_minimum():
    world = build_release_world(loss=None)
    add_votes(world, control=12, candidate_share=0.7)
    report = world_report(world, enqueue=False)
    report = release_report_build(report_id=report.pk)
    crowd = report.payload["crowd"]
    assert crowd["note"] == "not enough votes (12 of 50)" and crowd["win_rate"] is None
    page = _report_page(report)
    assert "not enough votes (12 of 50)" in page


def test_crowd_win_rate_from_the_control_stratum_only():
    world = build_release_world(loss=None)
    campaign, choices = add_votes(world, control=80, candidate_share=0.7, other=40)
    report = world_report(world, enqueue=False)
    assert report.campaign_id == campaign.pk  # the newest campaign over both runs by default
    crowd = release_report_build(report_id=report.pk).payload["crowd"]
    control = list(choices[:80])
    wins, ties = control.count("cand"), control.count("tie")
    decided = wins + control.count("base") + ties
    assert crowd["votes"] == 80 and crowd["all_votes"] == 120
    assert crowd["win_rate"]["estimate"] == pytest.approx((wins + ties / 2) / decided)
    assert crowd["both_bad"]["estimate"] == pytest.approx(control.count("both_bad") / 80)
    assert crowd["top_reasons"][0]["reason"] == "edges"


def test_report_job_runs_through_the_job_primitive_and_is_immutable(
    django_capture_on_commit_callbacks: Any,
):
    from evalsite.core import jobs

    world = build_release_world(loss=-0.08)
    report, claimed = _queued_and_claimed(world, django_capture_on_commit_callbacks)
    result = jobs.job_kind(claimed.job.kind).run_chunk(claimed)
    jobs.chunk_complete(claimed, result)
    report.refresh_from_db()
    assert report.status == "done" and report.verdict == "fail"
    before = json.dumps(report.payload, sort_keys=True)
    release_report_build(report_id=report.pk)  # a duplicate message changes nothing
    report.refresh_from_db()
    assert json.dumps(report.payload, sort_keys=True) == before
    with pytest.raises(ValueError, match="immutable"):
        report.save()


def test_api_builds_with_wait_and_answers_the_exit_code():
    world = build_release_world(loss=-0.08)
    token = api_token_create(user=user_with("researcher")).key
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    url = reverse("releases:api_reports")
    body = {"candidate": "subject-lift:1.1.0", "dataset": world.version.spec, "wait": True}
    resp = client.post(url, body, content_type="application/json")
    assert resp.status_code == 201, resp.content
    doc = resp.json()
    assert doc["verdict"] == "fail" and doc["exit_code"] == 3
    assert client.get(reverse("releases:api_report", args=[doc["id"]])).json()["exit_code"] == 3
    bad = client.post(url, {"candidate": "nope:1", "dataset": world.version.spec},
                      content_type="application/json")  # fmt: skip
    assert bad.status_code == 400 and bad.json()["exit_code"] == 1
    assert Client().post(url, body, content_type="application/json").status_code == 401


def _built(world: Any) -> ReleaseReport:
    report = world_report(world, enqueue=False)
    return release_report_build(report_id=report.pk)


def test_manager_approves_and_production_moves_in_the_same_transaction():
    world = build_release_world(loss=None)
    report = _built(world)
    client = client_as("release_manager", "mgr")
    resp = client.post(
        reverse("releases:decide", args=[report.pk]),
        {"decision": "approve", "reason": "better on every group", "move_production": "on",
         "override": "no crowd votes needed for this fix"},
    )  # fmt: skip
    assert report.verdict == "insufficient"  # no campaign: the override is what lets it through
    assert resp.status_code == 302
    alias = Alias.objects.get(family=world.candidate.model_version.family, name=PRODUCTION)
    assert alias.version_id == world.candidate.model_version_id
    decision = ReleaseDecision.objects.get()
    assert decision.alias_move == AliasMove.objects.get(alias=alias)
    assert decision.decided_by.username == "mgr" and decision.reason == "better on every group"
    with pytest.raises(ValueError, match="immutable"):
        decision.save()
    with pytest.raises(ValueError, match="immutable"):
        decision.delete()
    for name in ("releases:report", "releases:history"):
        page = client.get(reverse(name, args=[report.pk] if name.endswith("report") else []))
        assert "better on every group" in page.content.decode()
        assert "no crowd votes needed for this fix" in page.content.decode()
    version_page = client.get(world.candidate.model_version.get_absolute_url())
    assert "better on every group" in version_page.content.decode()


def test_researcher_cannot_decide_and_is_told_why():
    world = build_release_world(loss=None)
    report = _built(world)
    client = client_as("researcher")
    resp = client.post(
        reverse("releases:decide", args=[report.pk]),
        {"decision": "approve", "reason": "x", "move_production": "on"},
    )
    assert resp.status_code == 403
    assert "Only release managers and admins" in resp.content.decode()
    assert not ReleaseDecision.objects.exists()
    alias = Alias.objects.get(family=world.candidate.model_version.family, name=PRODUCTION)
    assert alias.version_id == world.baseline.model_version_id
    page = client.get(reverse("releases:report", args=[report.pk])).content.decode()
    assert "decide-form" not in page and "Only release managers and admins" in page


def test_a_decision_needs_a_reason_and_only_approval_moves_production():
    world = build_release_world(loss=None)
    report = _built(world)
    client = client_as("release_manager", "mgr")
    url = reverse("releases:decide", args=[report.pk])
    resp = client.post(url, {"decision": "reject", "reason": "  ", "move_production": "on"})
    assert resp.status_code == 400 and not ReleaseDecision.objects.exists()
    resp = client.post(url, {"decision": "reject", "reason": "no", "move_production": "on"})
    assert resp.status_code == 400 and "Only an approval" in resp.content.decode()


REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def test_offline_html_loads_nothing_and_rerenders_identically_from_the_json(tmp_path: Path):
    world = build_release_world(loss=-0.08)
    html_path, json_path = tmp_path / "r.html", tmp_path / "r.json"
    code, _, _ = _cli(*_args(world), "--json", str(json_path), "--html", str(html_path))
    assert code == 3
    html = html_path.read_text()
    assert "Plotly.newPlot" in html or "newPlot" in html  # plotly.js inlined, figures drawn
    # No <script src=…> at all; plotly.js's own source mentions map-tile and logo URLs in
    # strings (never fetched without a map trace), so the markup is scanned with script bodies
    # removed; tests/releases/test_browser.py opens the file in Chromium and sees no request.
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", html, flags=re.S | re.I)
    assert not REMOTE.search(markup), REMOTE.search(markup)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", markup)
    payload = json.loads(json_path.read_text())
    report = ReleaseReport.objects.get()
    assert render_export(payload, {}) == render_export(report.payload, {})
    for m in payload["metrics"].values():
        assert f"{m['delta']:+.3f}" in html and f"[{m['ci'][0]:+.3f}, {m['ci'][1]:+.3f}]" in html
    for g in payload["gates"]:
        assert g["text"].replace(">", "&gt;").replace("<", "&lt;") in html


def test_csv_export_is_neutralised_against_formulas():
    world = build_release_world(loss=-0.08)
    report = _built(world)
    client = client_as("researcher")
    text = client.get(reverse("releases:report_csv", args=[report.pk])).content.decode()
    import csv

    rows = list(csv.DictReader(text.splitlines()))
    assert {r["section"] for r in rows} >= {"metric", "gate", "fairness:skin_tone"}
    assert all(not r["text"].startswith(("=", "+", "-", "@")) for r in rows)
    iou = next(r for r in rows if r["section"] == "metric" and r["name"] == "iou")
    assert float(iou["delta"]) == pytest.approx(report.payload["metrics"]["iou"]["delta"])


def test_a_failed_report_job_records_why_on_the_report(django_capture_on_commit_callbacks: Any):
    from evalsite.core import jobs
    from evalsite.evals.models import ItemResult

    world = build_release_world(loss=None)
    ItemResult.objects.filter(run=world.candidate).update(status="failed", iou=None)
    report, claimed = _queued_and_claimed(world, django_capture_on_commit_callbacks)
    with pytest.raises(ReleaseError) as exc:  # what evalsite.core.tasks.run_chunk catches
        jobs.job_kind(claimed.job.kind).run_chunk(claimed)
    assert exc.value.retryable is False
    with django_capture_on_commit_callbacks(execute=True):
        jobs.chunk_fail(claimed, str(exc.value), retry=exc.value.retryable)
    report.refresh_from_db()
    assert report.status == "failed" and "share no successfully scored item" in report.error
    assert jobs.job_progress(report.job)["failed"] == 1
    page = _report_page(report)
    assert "share no successfully scored item" in page


def test_approval_cannot_move_production_to_a_version_that_is_not_ready():
    from models.models import ModelVersion

    world = build_release_world(loss=None)
    report = _built(world)
    ModelVersion.objects.filter(pk=world.candidate.model_version_id).update(status="rejected")
    client = client_as("release_manager", "mgr")
    resp = client.post(
        reverse("releases:decide", args=[report.pk]),
        {"decision": "approve", "reason": "ok", "move_production": "on", "override": "known"},
    )
    assert resp.status_code == 400 and "production cannot move" in resp.content.decode()
    assert not ReleaseDecision.objects.exists()  # nothing half-written
    alias = Alias.objects.get(family=world.candidate.model_version.family, name=PRODUCTION)
    assert alias.version_id == world.baseline.model_version_id


def test_a_report_whose_builder_died_is_finished_by_the_reaper_not_left_running(
    django_capture_on_commit_callbacks: Any,
):
    from datetime import timedelta
    from unittest import mock

    from django.utils import timezone

    from evalsite.core import jobs, reaper
    from evalsite.releases.models import ReportStatus

    # Given a report the CLI created and claimed (enqueue=False: it builds it itself), whose
    # process was then killed before finishing: nothing was sent to a worker
    world = build_release_world(loss=None)
    with (
        mock.patch("evalsite.core.tasks.run_chunk.apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        report = world_report(world, enqueue=False)
        assert report.job_id is not None and send.call_count == 0
        chunk = Chunk.objects.get(job=report.job)
        dead = jobs.chunk_claim(chunk_id=chunk.pk, worker="cli-host:4242:dead")
        assert dead is not None
        ReleaseReport.objects.filter(pk=report.pk).update(status=ReportStatus.RUNNING)

        # When its lease runs out, the reaper hands the chunk to a worker
        Chunk.objects.filter(pk=chunk.pk).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        assert reaper.reap()["requeued"] == 1
    # (the requeue's send runs once the reaper's transaction commits)
    assert send.call_count >= 1
    assert send.call_args.kwargs["args"] == [chunk.pk]

    # Then the worker builds it once, and it is done with a verdict
    claimed = jobs.chunk_claim(chunk_id=chunk.pk, worker="worker-1")
    assert claimed is not None and claimed.attempts == 2
    result = jobs.job_kind(claimed.job.kind).run_chunk(claimed)
    assert jobs.chunk_complete(claimed, result)
    report.refresh_from_db()
    assert report.status == ReportStatus.DONE and report.verdict in ("pass", "fail", "insufficient")


def test_the_cli_builds_through_the_reports_job(tmp_path: Path):
    world = build_release_world(loss=None)
    _, out, _ = _cli(*_args(world))
    report = ReleaseReport.objects.get()
    assert out.startswith(f"report {report.pk}")
    assert jobs_progress(report) == {"total": 1, "done": 1}


def jobs_progress(report: ReleaseReport) -> dict[str, int]:
    from evalsite.core import jobs

    assert report.job is not None
    return {k: v for k, v in jobs.job_progress(report.job).items() if v}
