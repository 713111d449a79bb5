"""Decisions bound to their evidence, through the service, the CLI and the API: a report records
what it read; it reads as stale when a newer primary run, attribute revision or campaign
snapshot exists; approve + move production is refused on a stale report or one whose baseline is
not production now; one decision per report; approving a verdict other than pass needs an
override reason that the history and the leaderboard banner show."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from evalsite.datasets.models import AttributeRevision
from evalsite.releases.errors import EvidenceMoved, OverrideRequired, ReleaseError
from evalsite.releases.models import GateConfig, ReleaseDecision, ReleaseReport
from evalsite.releases.selectors import report_json
from evalsite.releases.services.decisions import gate_config_update, release_decision_record
from evalsite.releases.services.evidence import report_staleness
from evalsite.releases.services.reports import (
    release_report_build,
    release_report_rebuild,
)
from models.models import PRODUCTION, Alias, AliasMove, ModelFamily
from models.services import api_token_create
from tests.evals.factories import tiny_spec, user_with, version_row
from tests.releases.builders import add_votes, build_release_world, newer_run, world_report

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def passing_world() -> Any:
    """Better everywhere, with gates that need no crowd votes: the verdict is pass."""
    world = build_release_world(loss=None)
    GateConfig.objects.create(family=world.candidate.model_version.family, min_win_rate=None,
                              min_votes=0)  # fmt: skip
    return world


def built(world: Any, **kwargs: Any) -> ReleaseReport:
    report = world_report(world, enqueue=False, **kwargs)
    return release_report_build(report_id=report.pk)


def production_of(world: Any) -> int:
    return Alias.objects.get(
        family=world.candidate.model_version.family, name=PRODUCTION
    ).version_id


def approve(report: ReleaseReport, user: Any, **kwargs: Any) -> ReleaseDecision:
    return release_decision_record(report=report, user=user, decision="approve",
                                   reason="better on every set", **kwargs)  # fmt: skip


def test_report_records_its_inputs_and_reads_fresh_until_one_moves() -> None:
    world = passing_world()
    report = built(world)
    assert report.verdict == "pass"
    recorded = report.inputs["sets"][0]
    assert recorded["runs"] == {"candidate": world.candidate.pk, "baseline": world.baseline.pk}
    assert recorded["dataset"] == world.version.spec
    revision = AttributeRevision.objects.get(version=world.version)
    assert recorded["attribute_revision"] == revision.pk
    assert report.inputs["settings"]["min_votes"] == 0
    assert report.inputs["campaign"] is None
    doc = report_json(report)
    assert doc is not None
    assert doc["id"] == report.pk and doc["inputs"] == report.inputs and doc["stale"] is False

    newer = newer_run(world, "baseline")
    staleness = report_staleness(report)
    assert staleness.stale
    assert f"newer run #{newer.pk}" in staleness.reasons[0] and "baseline" in staleness.reasons[0]
    assert report_json(ReleaseReport.objects.get(pk=report.pk))["stale"] is True  # type: ignore[index]


def test_a_newer_attribute_revision_or_new_ratings_make_a_report_stale() -> None:
    world = build_release_world(loss=None)
    campaign, _ = add_votes(world, control=10, candidate_share=0.7)
    report = built(world, campaign=campaign)
    assert report.inputs["campaign"] == campaign.pk
    assert not report_staleness(report).stale
    from ratings.services.reports import campaign_snapshot_mark_dirty

    campaign_snapshot_mark_dirty(campaign_id=campaign.pk)  # what a new rating does
    reasons = report_staleness(report).reasons
    assert len(reasons) == 1 and f"campaign {campaign.pk} has new ratings" in reasons[0]

    fresh = built(world, campaign=campaign)
    assert not report_staleness(fresh).stale
    AttributeRevision.objects.create(version=world.version, number=2, source="annotated")
    reasons = report_staleness(fresh).reasons
    assert reasons == [f"{world.version.spec} has a newer attribute revision (r2)"]


def test_a_report_built_before_evidence_was_recorded_reads_stale() -> None:
    world = passing_world()
    report = built(world)
    ReleaseReport.objects.filter(pk=report.pk).update(inputs={})
    staleness = report_staleness(ReleaseReport.objects.get(pk=report.pk))
    assert staleness.stale and "rebuild" in staleness.reasons[0]


def test_approving_a_stale_report_is_refused_and_its_rebuild_can_be_approved() -> None:
    world = passing_world()
    manager = user_with("release_manager", "mgr")
    report = built(world)
    newer_run(world, "candidate")
    with pytest.raises(EvidenceMoved, match=r"is stale: candidate .* has a newer run.*Rebuild"):
        approve(report, manager, move_production=True)
    assert production_of(world) == world.baseline.model_version_id
    assert not ReleaseDecision.objects.exists() and not AliasMove.objects.exists()

    rebuilt = release_report_rebuild(report=report, user=manager)
    assert rebuilt.pk != report.pk and rebuilt.job_id is not None  # built through the job
    assert [s.dataset_version_id for s in rebuilt.sets.all()] == [world.version.pk]
    rebuilt = release_report_build(report_id=rebuilt.pk)
    assert not report_staleness(rebuilt).stale
    decision = approve(rebuilt, manager, move_production=True)
    assert decision.alias_move is not None
    assert decision.inputs == rebuilt.inputs
    runs = [r.inputs["sets"][0]["runs"]["candidate"] for r in (report, rebuilt)]
    assert runs[0] != runs[1]  # the decision names the newer run it was made on
    assert production_of(world) == world.candidate.model_version_id
    # a stale report may still be rejected (nothing ships on it)
    other = release_decision_record(report=report, user=manager, decision="reject", reason="old")
    assert other.decision == "reject"


def test_approving_against_a_baseline_that_is_not_production_is_refused() -> None:
    world = passing_world()
    manager = user_with("release_manager", "mgr")
    report = built(world)
    elsewhere = version_row("subject-lift", "0.9.0", fmt="torch_export", spec=tiny_spec())
    Alias.objects.filter(family=elsewhere.family, name=PRODUCTION).update(version=elsewhere)
    with pytest.raises(EvidenceMoved, match=r"production points to subject-lift:0\.9\.0 now"):
        approve(report, manager, move_production=True)
    assert production_of(world) == elsewhere.pk
    assert not ReleaseDecision.objects.exists()


def test_one_decision_per_report() -> None:
    world = passing_world()
    manager = user_with("release_manager", "mgr")
    report = built(world)
    approve(report, manager, move_production=True)
    for kwargs in ({"decision": "reject"}, {"decision": "approve", "move_production": True}):
        with pytest.raises(EvidenceMoved, match=r"already has its decision.*Approve by mgr"):
            release_decision_record(report=report, user=manager, reason="again",
                                    **kwargs)  # fmt: skip
    assert ReleaseDecision.objects.count() == 1 and AliasMove.objects.count() == 1


def test_approving_a_verdict_other_than_pass_needs_an_override() -> None:
    world = build_release_world(loss=None)  # default gates want crowd votes: insufficient
    manager = user_with("release_manager", "mgr")
    report = built(world)
    assert report.verdict == "insufficient"
    with pytest.raises(OverrideRequired, match=r"verdict is 'insufficient'.*override"):
        approve(report, manager, move_production=True)
    assert not ReleaseDecision.objects.exists()
    decision = approve(report, manager, move_production=True, override="hotfix, votes later")
    assert decision.override == "hotfix, votes later" and decision.verdict == "insufficient"
    client = Client()
    client.force_login(manager)
    for url in (
        reverse("releases:history"),
        reverse("releases:leaderboard"),
        report.get_absolute_url(),
    ):
        assert "hotfix, votes later" in client.get(url).content.decode(), url
    banner = client.get(reverse("releases:leaderboard")).content.decode()
    assert 'id="newest-decision"' in banner and "Approve" in banner
    page = client.get(report.get_absolute_url()).content.decode()
    assert 'id="decide-form"' not in page and 'id="decision"' in page


def test_a_researcher_cannot_decide() -> None:
    world = passing_world()
    report = built(world)
    with pytest.raises(PermissionDenied):
        approve(report, user_with("researcher", "res"))
    with pytest.raises(ReleaseError, match="unknown decision"):
        release_decision_record(report=report, user=user_with("release_manager", "m"),
                                decision="ship-it", reason="x")  # fmt: skip


def decide_cli(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("release_decide", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_release_decide_exit_codes() -> None:
    world = build_release_world(loss=None)
    user_with("release_manager", "mgr")
    user_with("researcher", "res")
    report = built(world)  # insufficient
    base = ["--report", str(report.pk), "--as", "mgr", "--reason", "ship it"]
    code, _, err = decide_cli(*base, "--decision", "approve", "--move-production")
    assert code == 6 and "override" in err
    code, _, err = decide_cli("--report", "999", "--decision", "reject", "--as", "mgr",
                              "--reason", "x")  # fmt: skip
    assert code == 1 and "No release report #999" in err
    code, _, err = decide_cli(*base[:2], "--as", "res", "--reason", "x", "--decision", "reject")
    assert code == 1 and "Only release managers" in err
    code, _, err = decide_cli(*base[:2], "--reason", "x", "--decision", "reject")
    assert code == 1 and "--as USERNAME" in err

    newer_run(world, "baseline")
    code, _, err = decide_cli(*base, "--decision", "approve", "--move-production",
                              "--override", "no votes needed")  # fmt: skip
    assert code == 5 and "stale" in err and "Rebuild" in err
    rebuilt = release_report_build(report_id=release_report_rebuild(report=report).pk)
    args = ["--report", str(rebuilt.pk), "--as", "mgr", "--reason", "ship it"]
    code, out, _ = decide_cli(*args, "--decision", "approve", "--move-production",
                              "--override", "no votes needed")  # fmt: skip
    assert code == 0 and "production now points to subject-lift:1.1.0" in out
    assert "override: no votes needed" in out
    code, _, err = decide_cli(*args, "--decision", "more-data")
    assert code == 5 and "already has its decision" in err
    code, out, _ = decide_cli(*base, "--decision", "more-data")
    assert code == 0 and "needs more data" in out
    assert production_of(world) == world.candidate.model_version_id


def test_api_decision_answers_201_409_400_403() -> None:
    world = build_release_world(loss=None)
    manager = user_with("release_manager", "mgr")
    report = built(world)
    url = reverse("releases:api_decision", args=[report.pk])
    client = Client(HTTP_AUTHORIZATION=f"Token {api_token_create(user=manager).key}")
    body = {"decision": "approve", "reason": "ok", "move_production": True}
    resp = client.post(url, body, content_type="application/json")
    assert resp.status_code == 400 and resp.json()["exit_code"] == 6
    researcher = user_with("researcher", "res")
    other = Client(HTTP_AUTHORIZATION=f"Token {api_token_create(user=researcher).key}")
    resp = other.post(url, {**body, "override": "x"}, content_type="application/json")
    assert resp.status_code == 403
    resp = client.post(url, {**body, "override": "known gap"}, content_type="application/json")
    assert resp.status_code == 201, resp.json()
    assert resp.json()["override"] == "known gap"
    assert resp.json()["production_moved_to"] == "subject-lift:1.1.0"
    resp = client.post(url, {**body, "override": "again"}, content_type="application/json")
    assert resp.status_code == 409 and resp.json()["exit_code"] == 5
    doc = client.get(reverse("releases:api_report", args=[report.pk])).json()
    assert doc["decision"]["override"] == "known gap" and doc["stale"] is False
    assert doc["report"]["id"] == report.pk and doc["report"]["inputs"]["sets"]

    second = built(world)
    newer_run(world, "candidate")
    listed = {d["id"]: d for d in client.get(reverse("releases:api_reports")).json()}
    assert (
        listed[second.pk]["stale"] is True and "newer run" in listed[second.pk]["stale_reasons"][0]
    )
    assert listed[second.pk]["rebuild"].endswith(f"/releases/api/reports/{second.pk}/rebuild/")
    url2 = reverse("releases:api_decision", args=[second.pk])
    resp = client.post(url2, {**body, "override": "x"}, content_type="application/json")
    assert resp.status_code == 409 and "production points to" in resp.json()["error"]["message"]
    resp = client.post(reverse("releases:api_rebuild", args=[second.pk]))
    assert resp.status_code == 201 and resp.json()["id"] != second.pk


def test_page_refuses_with_the_reason_and_409() -> None:
    world = passing_world()
    manager = user_with("release_manager", "mgr")
    report = built(world)
    newer_run(world, "baseline")
    client = Client()
    client.force_login(manager)
    page = client.get(report.get_absolute_url()).content.decode()
    assert 'id="report-stale"' in page and "has a newer run" in page
    listing = client.get(reverse("releases:reports")).content.decode()
    assert "stale" in listing and reverse("releases:rebuild", args=[report.pk]) in listing
    form = {"decision": "approve", "reason": "ok", "move_production": "on"}
    resp = client.post(reverse("releases:decide", args=[report.pk]), form)
    assert resp.status_code == 409 and "is stale" in resp.content.decode()
    resp = client.post(reverse("releases:rebuild", args=[report.pk]))
    new = ReleaseReport.objects.exclude(pk=report.pk).get()
    assert resp.status_code == 302 and resp["Location"] == new.get_absolute_url()
    body = client.get(reverse("releases:report_json", args=[report.pk])).json()
    assert body["stale"] is True and body["report"]["stale"] is True and body["inputs"]["sets"]


def test_release_report_cli_prints_the_id_first_and_writes_inputs_and_stale(tmp_path: Path) -> None:
    world = passing_world()
    out_json = tmp_path / "r.json"
    out = StringIO()
    with pytest.raises(SystemExit) as exc:
        call_command("release_report", "--candidate", "subject-lift:candidate", "--dataset",
                     world.version.spec, "--json", str(out_json), stdout=out)  # fmt: skip
    assert exc.value.code == 0
    report = ReleaseReport.objects.get()
    assert out.getvalue().splitlines()[0] == f"report {report.pk}"
    doc = json.loads(out_json.read_text())
    assert doc["id"] == report.pk and doc["stale"] is False
    assert doc["inputs"]["sets"][0]["runs"]["candidate"] == world.candidate.pk
    assert all(g["dataset"] == world.version.spec for g in doc["gates"])


@pytest.mark.django_db(transaction=True)
def test_migration_turns_single_set_reports_into_suites_and_keeps_duplicate_decisions() -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    world = passing_world()
    report = built(world)
    manager = user_with("release_manager", "mgr")
    # Given the schema before suites, with two decisions on one report (the old double submit)
    executor = MigrationExecutor(connection)
    executor.migrate([("releases", "0001_initial")])
    old = MigrationExecutor(connection).loader.project_state([("releases", "0001_initial")]).apps
    Decision = old.get_model("releases", "ReleaseDecision")
    first = Decision.objects.create(report_id=report.pk, decision="approve", reason="a",
                                    decided_by_id=manager.pk)  # fmt: skip
    second = Decision.objects.create(report_id=report.pk, decision="approve", reason="b",
                                     decided_by_id=manager.pk)  # fmt: skip
    # When migrating forward
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    # Then the report reads its one set, the first decision is the decision, the second is kept
    moved = ReleaseReport.objects.get(pk=report.pk)
    assert [(s.position, s.dataset_version_id, s.candidate_run_id, s.baseline_run_id)
            for s in moved.sets.all()] == [(0, world.version.pk, world.candidate.pk,
                                            world.baseline.pk)]  # fmt: skip
    rows = {d.pk: d for d in ReleaseDecision.objects.all()}
    assert not rows[first.pk].duplicate_before_unique and rows[second.pk].duplicate_before_unique
    assert rows[first.pk].verdict == "pass"
    from evalsite.releases.selectors import report_decision

    assert report_decision(moved).pk == first.pk  # type: ignore[union-attr]
    with pytest.raises(EvidenceMoved):
        release_decision_record(report=moved, user=manager, decision="reject", reason="c")


def test_the_report_list_reads_staleness_in_a_fixed_number_of_queries() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    world = passing_world()
    client = Client()
    client.force_login(user_with("researcher", "res"))

    def listing() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as ctx:
            body = client.get(reverse("releases:reports")).content.decode()
        return len(ctx.captured_queries), body

    built(world)
    built(world)
    newer_run(world, "candidate")
    few, body = listing()
    assert body.count('class="badge stale"') == 2
    for _ in range(3):
        built(world)
    many, body = listing()
    assert body.count('class="badge stale"') == 2  # the three new ones read the newer run
    assert many == few


def test_a_family_enables_instance_and_cutout_gates_through_the_one_validation():
    family = ModelFamily.objects.create(name="stickers")
    mgr = user_with("release_manager", "mgr")
    margins = {"iou": 0.01, "instance_iou": 0.02, "grad": 1.5}
    config = gate_config_update(family=family, user=mgr, metric_margins=margins)
    assert dict(config.settings().metric_margins) == margins
    with pytest.raises(ReleaseError, match="instance_boundary_iou"):  # the message lists names
        gate_config_update(family=family, user=mgr, metric_margins={"instance_ious": 0.02})
