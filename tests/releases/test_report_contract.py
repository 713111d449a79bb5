"""The release report contract: what `release_report_build` stores (crowd numbers from the real
campaign snapshot job included) is what the report page, the JSON export, the API and the CLI's
summary read."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from evalsite.releases.management.commands.release_report import summary_text
from evalsite.releases.models import ReleaseReport
from evalsite.releases.selectors import release_report_payload
from evalsite.releases.services.reports import release_report_build, release_report_create
from models.services import api_token_create
from pipelines.payloads import PayloadError
from ratings.services.reports import campaign_snapshot_refresh
from tests.evals.factories import user_with
from tests.releases.builders import add_votes, build_release_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]
EXIT = {"pass": 0, "fail": 3, "insufficient": 4}


def _built(world: Any, campaign: Any) -> ReleaseReport:
    report = release_report_create(
        candidate=world.candidate.model_version, baseline=world.baseline.model_version,
        dataset_versions=[world.version], campaign=campaign, enqueue=False,
    )  # fmt: skip
    return release_report_build(report_id=report.pk)


def test_every_reader_of_a_built_report_shows_what_was_stored():
    world = build_release_world(loss=-0.08)
    campaign, _ = add_votes(world, control=60, candidate_share=0.75)
    campaign_snapshot_refresh(campaign=campaign, rounds=200)  # the crowd page's own numbers
    report = _built(world, campaign)
    stored = report.payload
    assert stored["version"] == 1 and stored["exit_code"] == EXIT[stored["verdict"]]
    assert {"metric", "fairness", "crowd"} <= {g["kind"] for g in stored["gates"]}

    researcher = Client()
    researcher.force_login(user_with("release_manager"))
    page = researcher.get(reverse("releases:report", args=[report.pk])).content.decode()
    for gate in stored["gates"]:
        assert html.escape(gate["text"]) in page, gate["name"]
    exported = researcher.get(reverse("releases:report_json", args=[report.pk])).json()["report"]
    assert exported["gates"] == stored["gates"] and exported["verdict"] == stored["verdict"]

    token = api_token_create(user=user_with("researcher")).key
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    doc = api.get(reverse("releases:api_report", args=[report.pk])).json()
    assert (doc["verdict"], doc["exit_code"]) == (stored["verdict"], stored["exit_code"])

    payload = release_report_payload(report)
    assert payload is not None and payload.to_dict() == stored
    lines = summary_text(payload, report.pk).splitlines()
    assert lines[2].startswith(f"verdict: {stored['verdict']}")
    assert lines[3:] == [f"  [{g['status']}] {g['name']}: {g['text']}" for g in stored["gates"]]


def test_a_stored_report_with_an_unknown_gate_status_is_refused_by_name():
    world = build_release_world(loss=None)
    report = _built(world, None)
    broken = {**report.payload, "gates": [{**report.payload["gates"][0], "status": "maybe"}]}
    ReleaseReport.objects.filter(pk=report.pk).update(payload=broken)
    with pytest.raises(PayloadError, match="unknown status 'maybe'"):
        release_report_payload(ReleaseReport.objects.get(pk=report.pk))
