"""The one-call gate: POST answers 202 and a poll URL; the gate's job reuses finished runs and
builds the report; the poll answers the verdict, the gates and the same exit code as the
`release_report` command; a retried request with the same key gets the same gate, a different
body under it 409; a token needs the report and evaluate scopes (upload with a file)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from evalsite.core.jobs import job_run_here
from evalsite.core.models import Job
from evalsite.evals.models import EvalRun
from evalsite.releases.models import ReleaseGate, ReleaseReport
from models.services import api_token_create
from tests.evals.factories import user_with
from tests.releases.builders import build_release_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def ci_client(scopes: str = "upload,evaluate,report") -> Client:
    user = user_with("researcher", "ci")
    return Client(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user, scopes=scopes).key}")


def run_gate(client: Client, body: dict[str, Any], key: str = "") -> dict[str, Any]:
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    started = client.post("/releases/api/gate/", body, content_type="application/json", **headers)
    assert started.status_code == 202, started.content
    doc = started.json()
    assert doc["status"] == "queued" and started["Location"] == doc["url"]
    gate = ReleaseGate.objects.get(pk=doc["id"])
    assert gate.job is not None
    job_run_here(job=Job.objects.get(pk=gate.job_id))
    polled = client.get(doc["url"])
    assert polled.status_code == 200
    return dict(polled.json())


def command_exit(candidate: str, dataset: str) -> int:
    with pytest.raises(SystemExit) as exc:
        call_command("release_report", "--candidate", candidate, "--dataset", dataset,
                     stdout=StringIO())  # fmt: skip
    return int(exc.value.code)


@pytest.mark.parametrize(("loss", "expected"), [(-0.08, {3}), (None, {0, 4})])
def test_the_gate_answers_the_verdict_and_exit_code_of_release_report(loss, expected) -> None:
    world = build_release_world(loss=loss)
    runs_before = EvalRun.objects.count()
    doc = run_gate(ci_client(), {"candidate": "subject-lift:candidate",
                                 "dataset": [world.version.spec]})  # fmt: skip
    assert doc["status"] == "done", doc
    assert doc["exit_code"] in expected
    assert EvalRun.objects.count() == runs_before, "finished runs with the same inputs reused"
    assert {(r["side"], r["run"], r["reused"]) for r in doc["runs"]} == {
        ("candidate", world.candidate.pk, True),
        ("baseline", world.baseline.pk, True),
    }
    report = ReleaseReport.objects.get(pk=doc["report"])
    assert doc["verdict"] == report.verdict and doc["baseline"] == "subject-lift:1.0.0"
    assert doc["report_url"].endswith(report.get_absolute_url())
    assert [g["name"] for g in doc["gates"]] == [g["name"] for g in report.payload["gates"]]
    assert doc["failing"] == [g for g in doc["gates"] if g["status"] != "pass"]
    if doc["exit_code"] == 3:
        assert any(g["status"] == "fail" for g in doc["failing"])
    assert command_exit("subject-lift:candidate", world.version.spec) == doc["exit_code"]


def test_a_retry_with_the_same_key_gets_the_same_gate_and_another_body_409() -> None:
    world = build_release_world()
    client = ci_client()
    body = {"candidate": "subject-lift:candidate", "dataset": world.version.spec}
    first = client.post("/releases/api/gate/", body, content_type="application/json",
                        HTTP_IDEMPOTENCY_KEY="build-77")  # fmt: skip
    assert first.status_code == 202
    again = client.post("/releases/api/gate/", body, content_type="application/json",
                        HTTP_IDEMPOTENCY_KEY="build-77")  # fmt: skip
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert (
        ReleaseGate.objects.count() == 1 and Job.objects.filter(kind="releases.gate").count() == 1
    )
    changed = {**body, "baseline": "subject-lift:1.1.0"}
    other = client.post("/releases/api/gate/", changed, content_type="application/json",
                        HTTP_IDEMPOTENCY_KEY="build-77")  # fmt: skip
    assert other.status_code == 409 and "different request" in other.json()["error"]["message"]
    # the key is per user: another user's same key is a new gate
    mine = Client(
        HTTP_AUTHORIZATION=f"Token {api_token_create(user=user_with('researcher', 'b')).key}"
    )
    assert mine.post("/releases/api/gate/", body, content_type="application/json",
                     HTTP_IDEMPOTENCY_KEY="build-77").status_code == 202  # fmt: skip


def test_bad_requests_answer_400_and_write_nothing() -> None:
    world = build_release_world()
    client = ci_client()
    cases = [
        ({"dataset": world.version.spec}, "either `candidate`"),
        ({"candidate": "subject-lift:9.9.9", "dataset": world.version.spec}, "9.9.9"),
        ({"candidate": "subject-lift:candidate", "dataset": "nope"}, "nope"),
        ({"candidate": "subject-lift:candidate", "dataset": []}, "set version"),
    ]
    for body, words in cases:
        answer = client.post("/releases/api/gate/", body, content_type="application/json")
        assert answer.status_code == 400 and words in answer.content.decode(), answer.content
    assert not ReleaseGate.objects.exists() and not Job.objects.filter(kind="releases.gate")
    assert client.get("/releases/api/gate/999/").status_code == 404


def test_the_gate_needs_the_evaluate_and_report_scopes() -> None:
    world = build_release_world()
    body = {"candidate": "subject-lift:candidate", "dataset": world.version.spec}
    no_eval = ci_client("upload,report").post("/releases/api/gate/", body,
                                              content_type="application/json")  # fmt: skip
    assert no_eval.status_code == 403 and "'evaluate' scope" in no_eval.json()["error"]["message"]
    no_report = ci_client("upload,evaluate").post("/releases/api/gate/", body,
                                                  content_type="application/json")  # fmt: skip
    assert no_report.status_code == 403 and "'report' scope" in no_report.json()["error"]["message"]
    assert not ReleaseGate.objects.exists()


def test_a_gate_whose_candidate_cannot_run_fails_with_exit_code_1() -> None:
    world = build_release_world()
    from models.models import ModelVersion

    ModelVersion.objects.filter(version="1.1.0").update(status="rejected",
                                                        rejection_reason="bad graph")  # fmt: skip
    doc = run_gate(ci_client(), {"candidate": "subject-lift:1.1.0",
                                 "dataset": world.version.spec})  # fmt: skip
    assert doc["status"] == "failed" and doc["exit_code"] == 1
    assert "rejected: bad graph" in doc["error"]


def test_an_upload_through_the_gate_needs_the_upload_scope_and_valid_spec_json() -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    world = build_release_world()

    def form(spec: str) -> dict[str, Any]:
        return {"family": "subject-lift", "version": "2.0.0", "spec": spec,
                "file": SimpleUploadedFile("m.pt2", b"not a model"),
                "dataset": [world.version.spec]}  # fmt: skip

    refused = ci_client("evaluate,report").post("/releases/api/gate/", form("{}"))
    assert refused.status_code == 403 and "'upload' scope" in refused.json()["error"]["message"]
    bad = ci_client().post("/releases/api/gate/", form("{nope"))
    assert bad.status_code == 400 and "not valid JSON" in bad.content.decode()
    assert not ReleaseGate.objects.exists()
    from models.models import ModelVersion

    assert not ModelVersion.objects.filter(version="2.0.0").exists()
