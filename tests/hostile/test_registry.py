"""Hostile model uploads and names through the REST API, the web form and the Django admin: a
clear message, the right status, nothing half-written (rows, stored bytes)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.test import APIClient

from evalsite.evals.models import EvalRun
from models.models import Alias, AliasMove, ModelFamily, ModelVersion
from tests.evals.factories import token_client
from tests.registry import tiny_models as tm
from tests.registry.factories import VersionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

VERSIONS = "/models/api/families/subject-lift/versions/"


@pytest.fixture(autouse=True)
def media(tmp_path: Path, settings: Any) -> Path:
    root = tmp_path / "media"
    settings.MEDIA_ROOT = root
    return root


@pytest.fixture(autouse=True)
def no_broker() -> Any:
    with mock.patch("celery.app.task.Task.apply_async") as sent:
        yield sent


def _user(name: str, role: str) -> User:
    user = User.objects.create_user(name, password="pw-hostile")
    user.groups.set(Group.objects.filter(name=role))
    return user


def _api(role: str = "researcher") -> APIClient:
    return token_client(_user(f"api-{role}", role))


def _files(media: Path) -> list[Path]:
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


def _upload(client: APIClient, path: Path, spec: Any, version: str = "1.0.0") -> Any:
    with open(path, "rb") as fh:
        return client.post(
            VERSIONS,
            {"version": version, "file": fh,
             "spec": spec if isinstance(spec, str) else json.dumps(spec)},
            format="multipart",
        )  # fmt: skip


FILES = [
    pytest.param(tm.write_pickle, "pickled checkpoint", id="model-pickle"),
    pytest.param(tm.write_random, "not a recognised model file", id="model-random-bytes"),
    pytest.param(tm.write_traversal_zip, "escapes the archive", id="model-zip-traversal"),
]


@pytest.mark.parametrize(("write", "words"), FILES)
def test_hostile_model_files_are_rejected_and_not_stored(
    tmp_path: Path, media: Path, write: Any, words: str
) -> None:
    path = Path(write(tmp_path / "model.pt2"))
    response = _upload(_api(), path, tm.spec_for("torch_export"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "rejected" and words in body["rejection_reason"]
    assert _files(media) == [], "refused bytes are never stored"


def test_spec_several_problems_are_all_reported(tmp_path: Path, media: Path) -> None:
    spec = tm.spec_for("torch_export")
    spec["input"]["mean"] = [0.5, 0.5]  # RGB needs 3
    spec["input"]["std"] = [1.0]
    spec["input"]["colour"] = "RGB"  # unknown field
    response = _upload(_api(), Path(tm.write_pt2(tmp_path / "m.pt2")), spec)
    reason = response.json()["rejection_reason"]
    assert response.json()["status"] == "rejected"
    for path in ("input.mean", "input.std", "input: unknown field(s) ('colour'"):
        assert path in reason, reason
    assert _files(media) == []


def test_spec_not_json_is_a_400_and_writes_nothing(tmp_path: Path) -> None:
    response = _upload(_api(), Path(tm.write_pt2(tmp_path / "m.pt2")), "{nope")
    assert response.status_code == 400
    assert "The spec is not valid JSON" in response.json()["error"]["fields"]["spec"][0]
    assert not ModelVersion.objects.exists() and not ModelFamily.objects.exists()


def test_spec_nan_is_refused_at_every_door(tmp_path: Path, media: Path) -> None:
    spec = tm.spec_for("torch_export")
    spec["input"]["mean"] = [float("nan"), 0.0, 0.0]
    client = Client()
    client.force_login(_user("web", "researcher"))
    with open(tm.write_pt2(tmp_path / "m.pt2"), "rb") as fh:
        response = client.post("/models/upload/", {
            "family": "subject-lift", "version": "1.0.0", "file": fh,
            "spec_text": json.dumps(spec),
        })  # fmt: skip
    assert response.status_code == 400
    assert "NaN is not valid JSON; spec numbers must be finite" in response.content.decode()
    api = _upload(_api(), Path(tm.write_pt2(tmp_path / "n.pt2")), json.dumps(spec))
    assert api.status_code == 400 and "not valid JSON" in api.json()["error"]["fields"]["spec"][0]
    model = Path(tm.write_pt2(tmp_path / "c.pt2"))
    tm.write_spec(model, spec)
    with pytest.raises(CommandError) as err:
        call_command("register_model", str(model), "--family", "subject-lift", "--version",
                     "1.0.0", stdout=StringIO())  # fmt: skip
    assert err.value.returncode == 2 and "spec numbers must be finite" in str(err.value)
    assert not ModelVersion.objects.exists() and _files(media) == []


def test_api_version_newline_is_a_400_naming_the_field(tmp_path: Path) -> None:
    path = Path(tm.write_pt2(tmp_path / "m.pt2"))
    response = _upload(_api(), path, tm.spec_for("torch_export"), version="1.0.0\n")
    assert response.status_code == 400
    assert "control character" in response.json()["error"]["fields"]["version"][0]
    assert not ModelVersion.objects.exists()


def test_web_family_zero_width_is_a_form_error(tmp_path: Path) -> None:
    client = Client()
    client.force_login(_user("web", "researcher"))
    path = Path(tm.write_pt2(tmp_path / "m.pt2"))
    with open(path, "rb") as fh:
        response = client.post("/models/upload/", {
            "family": "subject\u200b-lift", "version": "1.0.0", "file": fh,
            "spec_text": json.dumps(tm.spec_for("torch_export")),
        })  # fmt: skip
    assert response.status_code == 400
    assert "U+200B ZERO WIDTH SPACE" in response.content.decode()
    assert not ModelFamily.objects.exists() and not ModelVersion.objects.exists()


ALIASES = [
    pytest.param("production%0A", 400, "control character", id="api-alias-newline"),
    pytest.param("producti%CE%BFn", 400, "GREEK SMALL LETTER OMICRON", id="api-alias-omicron"),
    pytest.param("production.", 400, "must end with a letter or digit",
                 id="api-alias-trailing-dot"),
    pytest.param("pr0duction", 400, "looks like the reserved alias 'production'",
                 id="api-alias-leet"),
    pytest.param("PRODUCTION", 403, "Only release managers and admins may move the production",
                 id="api-alias-uppercase"),
    pytest.param("%E2%80%AEproduction", 400, "RIGHT-TO-LEFT OVERRIDE", id="api-alias-bidi"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "status", "words"), ALIASES)
def test_look_alike_aliases_cannot_impersonate_production(
    name: str, status: int, words: str
) -> None:
    v = VersionFactory(version="1.0.0")
    response = _api().post(
        f"/models/api/families/{v.family.name}/aliases/{name}/",
        {"version": "1.0.0", "reason": "ship it"},
    )
    assert response.status_code == status, response.content
    assert words in response.json()["error"]["message"]
    assert not Alias.objects.exists() and not AliasMove.objects.exists()


def test_api_run_bad_json_is_a_400() -> None:
    response = _api().post("/runs/api/runs/", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["error"]["message"]
    assert not EvalRun.objects.exists()


def test_admin_family_uppercase_must_be_canonical() -> None:
    admin = User.objects.create_superuser("root", password="pw-hostile")
    client = Client()
    client.force_login(admin)
    response = client.post("/admin/registry/modelfamily/add/", {"name": "Production-Models"})
    assert response.status_code == 200  # the form again, with the error
    assert "canonical form" in response.content.decode()
    assert not ModelFamily.objects.exists()


CASE_IDS = {p.id for p in FILES} | {p.id for p in ALIASES} | {
    "spec-several-problems", "spec-not-json", "spec-nan", "api-version-newline",
    "web-family-zero-width", "api-run-bad-json", "admin-family-uppercase",
}  # fmt: skip
