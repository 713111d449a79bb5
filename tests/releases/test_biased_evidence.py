"""A release report on a set a version was tuned or selected on names it and cannot pass."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from evalsite.releases.export import export_html
from evalsite.releases.models import GateConfig
from evalsite.releases.services.reports import release_report_build, release_report_create
from tests.evals.factories import tiny_spec, user_with
from tests.releases.builders import build_release_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def build(world):
    report = release_report_create(
        candidate=world.candidate.model_version,
        baseline=world.baseline.model_version,
        dataset_versions=[world.version],
        enqueue=False,
    )
    return release_report_build(report_id=report.pk)


def world_without_other_doubts():
    """Better everywhere, no crowd gate: without biased evidence the verdict would be pass."""
    world = build_release_world(loss=None)
    GateConfig.objects.create(
        family=world.candidate.model_version.family, min_win_rate=None, min_votes=0
    )
    return world


def test_a_clean_set_passes_and_says_nothing_about_bias():
    report = build(world_without_other_doubts())
    assert report.payload["biased_evidence"] == [] and report.verdict == "pass"


def test_the_report_names_biased_evidence_and_its_quality_gates_cannot_pass(tmp_path: Path):
    world = world_without_other_doubts()
    cand = world.candidate.model_version
    chosen = [it.image_sha256 for it in world.items[:30]]
    cand.spec = {**tiny_spec(), "training": {"selected_image_sha256": chosen}}
    cand.save(update_fields=["spec"])

    report = build(world)
    p = report.payload
    assert p["biased_evidence"] == [
        {"role": "selected", "version": "subject-lift:1.1.0", "items": 30, "of": 90,
         "text": "30 of 90 items were used to select subject-lift 1.1.0 (selected); numbers on "
                 "this set favour it", "dataset": world.version.spec},
    ]  # fmt: skip
    metric_gates = [g for g in p["gates"] if g["kind"] == "metric"]
    assert metric_gates and all(g["status"] == "insufficient" for g in metric_gates)
    assert all(g["text"].startswith("biased evidence: 30 of 90 items") for g in metric_gates)
    evidence = {g["name"]: g for g in p["gates"]}["unbiased evidence"]
    assert evidence["kind"] == "evidence" and evidence["status"] == "insufficient"
    assert (report.verdict, p["verdict"], p["exit_code"]) == ("insufficient",) * 2 + (4,)

    client = Client()
    client.force_login(user_with("researcher"))
    page = client.get(reverse("releases:report", args=[report.pk])).content.decode()
    assert 'id="biased-evidence"' in page
    assert "30 of 90 items were used to select subject-lift 1.1.0 (selected)" in page
    body = json.loads(client.get(reverse("releases:report_json", args=[report.pk])).content)
    assert body["report"]["biased_evidence"][0]["items"] == 30
    offline = export_html(report)  # the downloadable HTML says it too
    assert "30 of 90 items were used to select subject-lift 1.1.0 (selected)" in offline

    out_json = tmp_path / "r.json"
    with pytest.raises(SystemExit) as exc:
        call_command(
            "release_report", "--candidate", "subject-lift:candidate", "--dataset",
            world.version.spec, "--json", str(out_json), stdout=StringIO(), stderr=StringIO(),
        )  # fmt: skip
    assert exc.value.code == 4
    assert json.loads(out_json.read_text())["biased_evidence"][0]["role"] == "selected"
