"""Release reports over a suite of set versions: quality on a set without person attributes,
fairness on a set with them, crowd gates from a campaign on one of the pairs; every gate names the
set it read; the CLI, the API and the form accept several sets."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from evalsite.evals.models import EvalRun
from evalsite.releases.errors import ReleaseError
from evalsite.releases.models import ReleaseReport
from evalsite.releases.services.reports import release_report_build, release_report_create
from models.services import api_token_create
from tests.evals.factories import user_with
from tests.releases.builders import add_set, add_votes, build_release_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def suite_world() -> tuple[Any, Any]:
    """`people`: a set with person attributes; `quality`: a set without, same two versions."""
    people = build_release_world(loss=-0.08)  # the candidate hurts Monk 8-10 on `people`
    quality = add_set(people)
    return quality, people


def test_a_suite_report_reads_quality_fairness_and_crowd_each_from_its_set() -> None:
    quality, people = suite_world()
    campaign, _ = add_votes(people, control=60, candidate_share=0.8)
    report = release_report_create(
        candidate=people.candidate.model_version, baseline=people.baseline.model_version,
        dataset_versions=[quality.version, people.version], campaign=campaign, enqueue=False,
    )  # fmt: skip
    assert [s.dataset_version_id for s in report.sets.all()] == [quality.version.pk,
                                                                  people.version.pk]  # fmt: skip
    assert report.dataset_version_id == quality.version.pk
    report = release_report_build(report_id=report.pk)
    p = report.payload
    assert p["dataset"] == quality.version.spec
    assert p["datasets"] == [quality.version.spec, people.version.spec]
    assert p["runs"] == {"candidate": quality.candidate.pk, "baseline": quality.baseline.pk}
    gates = {(g["name"], g["dataset"]) for g in p["gates"]}
    for spec in (quality.version.spec, people.version.spec):
        assert ("IoU non-inferiority", spec) in gates
        assert ("same post-processing", spec) in gates
    fairness = [g for g in p["gates"] if g["kind"] == "fairness"]
    assert {g["dataset"] for g in fairness} == {people.version.spec}
    skin = next(g for g in fairness if g["name"] == "fairness: skin tone")
    assert skin["status"] == "fail" and skin["group"] == "8-10"
    crowd = [g for g in p["gates"] if g["kind"] == "crowd" or g["name"] == "minimum votes"]
    assert crowd and {g["dataset"] for g in crowd} == {people.version.spec}
    assert p["crowd"] is not None and p["crowd"]["votes"] == 60
    assert p["fairness"]["dataset"] == people.version.spec and p["fairness"]["available"]
    assert p["verdict"] == "fail"
    recorded = report.inputs["sets"]
    assert [s["dataset"] for s in recorded] == p["datasets"]
    assert recorded[0]["attribute_revision"] is None  # the quality set has no attributes
    assert recorded[1]["attribute_revision"] is not None
    assert report.inputs["campaign"] == campaign.pk
    from evalsite.releases.export import export_csv

    csv_lines = export_csv(report).splitlines()
    assert csv_lines[0].endswith(",dataset")
    skin_row = next(line for line in csv_lines if line.startswith("gate,fairness: skin tone"))
    assert skin_row.endswith(people.version.spec)
    client = Client()
    client.force_login(user_with("researcher"))
    page = client.get(report.get_absolute_url()).content.decode()
    assert 'class="gate-set"' in page and people.version.spec in page
    assert 'id="suite"' in page and f'data-set="{quality.version.spec}"' in page


def test_a_suite_without_person_attributes_says_fairness_is_insufficient_once() -> None:
    quality, people = suite_world()
    report = release_report_create(
        candidate=people.candidate.model_version, baseline=people.baseline.model_version,
        dataset_versions=[quality.version], enqueue=False,
    )  # fmt: skip
    p = release_report_build(report_id=report.pk).payload
    fairness = [g for g in p["gates"] if g["kind"] == "fairness"]
    assert fairness and all(g["status"] == "insufficient" for g in fairness)
    assert {g["dataset"] for g in fairness} == {quality.version.spec}


def test_a_suite_needs_a_primary_run_of_both_versions_on_every_set() -> None:
    quality, people = suite_world()
    EvalRun.objects.filter(pk=people.baseline.pk).update(status="failed")
    with pytest.raises(ReleaseError, match=r"baseline subject-lift:1\.0\.0 has no finished run"):
        release_report_create(
            candidate=people.candidate.model_version, baseline=people.baseline.model_version,
            dataset_versions=[quality.version, people.version],
        )  # fmt: skip
    with pytest.raises(ReleaseError, match="named twice"):
        release_report_create(
            candidate=people.candidate.model_version, baseline=people.baseline.model_version,
            dataset_versions=[quality.version, quality.version],
        )  # fmt: skip
    assert not ReleaseReport.objects.exists()


def test_a_campaign_over_none_of_the_pairs_is_refused() -> None:
    quality, people = suite_world()
    campaign, _ = add_votes(people, control=5, candidate_share=0.5)
    campaign.runs.set([people.baseline])
    with pytest.raises(ReleaseError, match=f"campaign {campaign.pk} does not compare"):
        release_report_create(
            candidate=people.candidate.model_version, baseline=people.baseline.model_version,
            dataset_versions=[quality.version, people.version], campaign=campaign,
        )  # fmt: skip


def test_cli_api_and_form_take_several_sets(tmp_path: Path) -> None:
    quality, people = suite_world()
    out, out_json = StringIO(), tmp_path / "r.json"
    with pytest.raises(SystemExit) as exc:
        call_command("release_report", "--candidate", "subject-lift:candidate",
                     "--dataset", quality.version.spec, "--dataset", people.version.spec,
                     "--json", str(out_json), stdout=out)  # fmt: skip
    assert exc.value.code == 3  # the fairness gate on `people` fails
    first = ReleaseReport.objects.get()
    lines = out.getvalue().splitlines()
    assert lines[0] == f"report {first.pk}"
    assert f"fairness: skin tone [{people.version.spec}]" in out.getvalue()
    doc = json.loads(out_json.read_text())
    assert doc["datasets"] == [quality.version.spec, people.version.spec]
    assert all(g["dataset"] in doc["datasets"] for g in doc["gates"])

    researcher = user_with("researcher", "res")
    client = Client(HTTP_AUTHORIZATION=f"Token {api_token_create(user=researcher).key}")
    resp = client.post(reverse("releases:api_reports"),
                       {"candidate": "subject-lift:candidate", "wait": True,
                        "dataset": [quality.version.spec, people.version.spec]},
                       content_type="application/json")  # fmt: skip
    assert resp.status_code == 201, resp.json()
    body = resp.json()
    assert body["datasets"] == [quality.version.spec, people.version.spec]
    assert body["exit_code"] == 3 and body["report"]["id"] == body["id"]
    bad = client.post(reverse("releases:api_reports"),
                      {"candidate": "subject-lift:candidate", "dataset": []},
                      content_type="application/json")  # fmt: skip
    assert bad.status_code == 400
    padded = client.post(reverse("releases:api_reports"),
                         {"candidate": "subject-lift:candidate",
                          "dataset": [quality.version.spec + " "]},
                         content_type="application/json")  # fmt: skip
    assert padded.status_code == 400 and "spaces around it" in json.dumps(padded.json())

    web = Client()
    web.force_login(researcher)
    resp = web.post(reverse("releases:reports"), {
        "candidate": "subject-lift:candidate",
        "dataset": f"{quality.version.spec}, {people.version.spec}",
    })  # fmt: skip
    assert resp.status_code == 302
    newest = ReleaseReport.objects.first()
    assert newest is not None
    assert [s.dataset_version_id for s in newest.sets.all()] == [quality.version.pk,
                                                                  people.version.pk]  # fmt: skip
    assert newest.job_id is not None  # the page queues the report's job
