"""The token REST API: upload, status, alias moves, and docs/api.md's curl examples run for real."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from models.models import Alias, AliasMove, ModelVersion, VersionStatus
from models.services import model_version_validate
from tests.evals.factories import token_client
from tests.registry.factories import VersionFactory
from tests.registry.tiny_models import spec_for

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
VERSIONS = "/models/api/families/subject-lift/versions/"


def upload(client, path: Path, version="1.2.0", spec=None):
    with open(path, "rb") as fh:
        return client.post(
            VERSIONS,
            {"version": version, "file": fh, "spec": json.dumps(spec or spec_for("torch_export"))},
            format="multipart",
        )


def test_post_version_queues_validation_and_get_shows_the_status(
    tiny, researcher, no_broker, django_capture_on_commit_callbacks
):
    client = token_client(researcher)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, tiny["pt2"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["ref"], body["status"], body["format"]) == (
        "subject-lift:1.2.0",
        "uploaded",
        "torch_export",
    )
    assert no_broker.call_count == 1  # the registry.validate chunk went to the queue

    model_version_validate(version_id=body["id"])  # what the worker does
    status = client.get(f"/models/api/versions/{body['id']}/").json()
    assert status["status"] == "ready" and status["validation_report"]["latency_ms"] > 0


def test_post_a_pickle_is_recorded_as_rejected_with_the_reason(tiny, researcher, no_broker):
    response = upload(token_client(researcher), tiny["pickle"])
    assert response.status_code == 201
    assert response.json()["status"] == "rejected"
    assert "pickled checkpoint" in response.json()["rejection_reason"]
    assert no_broker.call_count == 0


def test_bad_input_is_a_400_naming_the_field(tiny, researcher, no_broker):
    client = token_client(researcher)
    [message] = upload(client, tiny["pt2"], version="latest").json()["error"]["fields"]["version"]
    assert "a version starts with a digit" in message and "'latest'" in message
    with open(tiny["pt2"], "rb") as fh:
        response = client.post(
            VERSIONS, {"version": "1.0.0", "file": fh, "spec": "{nope"}, format="multipart"
        )
    assert response.status_code == 400
    assert "The spec is not valid JSON" in response.json()["error"]["fields"]["spec"][0]


def test_upload_over_the_size_limit_is_refused_with_the_limit(
    tmp_path, researcher, settings, no_broker
):
    settings.MAX_UPLOAD_MB = 1
    big = tmp_path / "big.pt2"
    big.write_bytes(b"\0" * (1024 * 1024 + 1))
    response = upload(token_client(researcher), big)
    assert response.status_code == 400
    [message] = response.json()["error"]["fields"]["file"]
    assert "the upload limit is 1 MB (MAX_UPLOAD_MB)" in message
    assert not ModelVersion.objects.exists()


def test_no_credentials_is_401_and_annotators_get_403(tiny, annotator):
    assert APIClient().get("/models/api/families/").status_code == 401
    assert APIClient().post(VERSIONS, {}).status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert bad.get("/models/api/families/").status_code == 401
    annotator_client = token_client(annotator)
    assert annotator_client.get("/models/api/families/").status_code == 403
    assert upload(annotator_client, tiny["pt2"]).status_code == 403


def test_alias_move_by_api_obeys_the_production_rule_and_keeps_history(researcher, manager):
    v1, v2 = VersionFactory(version="1.0.0"), VersionFactory(version="1.1.0")
    url = "/models/api/families/subject-lift/aliases/"
    rc = token_client(researcher)
    ok = rc.post(url + "candidate/", {"version": "1.1.0", "reason": "better IoU"})
    assert ok.status_code == 200 and ok.json()["version"] == "1.1.0"
    denied = rc.post(url + "production/", {"version": "1.1.0", "reason": "ship it"})
    assert denied.status_code == 403
    assert "Only release managers and admins" in denied.json()["error"]["message"]
    mc = token_client(manager)
    assert mc.post(url + "production/", {"version": "1.0.0", "reason": "first"}).status_code == 200
    moved = mc.post(url + "production/", {"version": "1.1.0", "reason": "release 1.1"})
    history = moved.json()["history"]
    assert [(h["from"], h["to"], h["by"], h["reason"]) for h in history] == [
        ("1.0.0", "1.1.0", "mo", "release 1.1"),
        (None, "1.0.0", "mo", "first"),
    ]
    assert Alias.objects.get(name="production").version == v2 and v1
    assert mc.post(url + "production/", {"version": "9.9.9", "reason": "x"}).status_code == 404
    assert mc.post(url + "production/", {"version": "1.0.0"}).status_code == 400
    assert rc.get(url + "candidate/").json()["version"] == "1.1.0"


def test_moving_an_alias_to_a_rejected_version_is_a_400(researcher):
    VersionFactory(version="2.0.0", status=VersionStatus.REJECTED)
    response = token_client(researcher).post(
        "/models/api/families/subject-lift/aliases/candidate/", {"version": "2.0.0", "reason": "x"}
    )
    assert (
        response.status_code == 400
        and "only ready (validated) versions" in response.json()["error"]["message"]
    )


def doc_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", API_DOC.read_text(), flags=re.S)
    assert len(blocks) >= 2, "docs/api.md lost its curl examples"
    return blocks


@pytest.mark.django_db(transaction=True)
def test_the_api_doc_curl_examples_work_against_a_live_server(
    tiny, tmp_path, live_server, researcher, no_broker
):
    assert shutil.which("curl"), "curl is needed for this test"
    token = Token.objects.create(user=researcher).key
    shutil.copy(tiny["pt2"], tmp_path / "subject-lift-1.2.0.pt2")
    shutil.copy(f"{tiny['pt2']}.spec.json", tmp_path / "subject-lift-1.2.0.pt2.spec.json")
    env = {**os.environ, "BASE": live_server.url, "TOKEN": token}
    upload_cmd, alias_cmd = doc_commands()[:2]

    done = subprocess.run(
        ["bash", "-c", upload_cmd],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)
    assert body["ref"] == "subject-lift:1.2.0" and body["status"] == "uploaded"

    model_version_validate(version_id=body["id"])
    moved = subprocess.run(
        ["bash", "-c", alias_cmd], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["version"] == "1.2.0"
    assert AliasMove.objects.get().reason == "beats 1.1.0 on PASCAL-S"


def test_the_stored_key_carries_the_registry_names_never_the_uploaders_file_name(
    tiny, researcher, no_broker, tmp_path
):
    # Given a model file uploaded under a name that says which model it is, and one with an
    # extension that is not a plain one
    named = tmp_path / "Secret Candidate v7 (lab).pt2"
    shutil.copy(tiny["pt2"], named)
    odd = tmp_path / "weights.p t2!"
    shutil.copy(tiny["pt2"], odd)
    client = token_client(researcher)

    # When both are registered
    first = upload(client, named, version="1.3.0").json()
    second = upload(client, odd, version="1.4.0").json()

    # Then each is stored under its family and version only, the upload name kept as a field
    rows = {v.version: v for v in ModelVersion.objects.filter(pk__in=[first["id"], second["id"]])}
    assert rows["1.3.0"].file.name == "models/subject-lift/1.3.0/model.pt2"
    assert rows["1.3.0"].original_filename == named.name
    assert rows["1.4.0"].file.name == "models/subject-lift/1.4.0/model.bin"
