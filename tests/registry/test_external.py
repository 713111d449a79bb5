"""External versions (no runnable file): one register service behind CLI, API and web form."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.test import APIClient

from evalsite.core.services import user_ensure
from models.errors import RegistryError
from models.models import ModelFormat, ModelVersion, VersionStatus
from models.services import model_version_register
from tests.evals.factories import token_client

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def register(*args: str) -> str:
    out = StringIO()
    call_command("register_model", *args, stdout=out)
    return out.getvalue()


def test_cli_registers_an_external_version_ready_at_once_with_lineage_and_provenance():
    model_version_register(family="subject-lift", version="1.1.0", file=None, spec=None,
                           external=True)  # fmt: skip
    out = register("--external", "--family", "subject-lift", "--version", "1.1.0-coreml-a17",
                   "--parent", "1.1.0", "--notes", "Core ML build on the A17 Pro",
                   "--provenance", "exported by the iOS team, Xcode 16")  # fmt: skip
    row = ModelVersion.objects.get(version="1.1.0-coreml-a17")
    assert "subject-lift:1.1.0-coreml-a17: ready, external" in out
    assert "predictions imported, not run here" in out
    assert row.format == ModelFormat.EXTERNAL and row.status == VersionStatus.READY
    assert row.is_external and not row.file and row.sha256 == ""
    assert row.parent.version == "1.1.0" and row.provenance == "exported by the iOS team, Xcode 16"
    assert row.notes == "Core ML build on the A17 Pro"
    # the same registration again changes nothing
    assert "unchanged" in register("--external", "--family", "subject-lift", "--version",
                                   "1.1.0-coreml-a17")  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["model.pt2"], "--external takes no FILE"),
        (["--builtin", "saliency-grabcut"], "--external takes no --builtin"),
        (["--parent", "9.9.9"], "Parent version vendor:9.9.9 does not exist"),
    ],
)
def test_cli_external_refuses_a_file_or_an_unknown_parent(extra, message):
    with pytest.raises(CommandError) as caught:
        register("--external", "--family", "vendor", "--version", "1.0", *extra)
    assert caught.value.returncode == 2 and message in str(caught.value)
    assert not ModelVersion.objects.exists()


def test_an_external_version_string_cannot_be_reused_by_a_builtin():
    model_version_register(family="vendor", version="1.0", file=None, spec=None, external=True)
    from pipelines.runners.builtin import builtin_spec

    with pytest.raises(RegistryError) as caught:
        model_version_register(family="vendor", version="1.0", file=None,
                               spec=builtin_spec("saliency-grabcut"), validate="none")  # fmt: skip
    assert "vendor:1.0 already exists (format external (predictions imported))" in str(caught.value)


@pytest.fixture
def api() -> APIClient:
    user = user_ensure(username="res", password="pw-res", roles=["researcher"])
    return token_client(user)


def test_api_registers_an_external_version(api):
    url = reverse("registry:api-versions", args=["vendor-cutout"])
    response = api.post(url, {"version": "2024.06", "external": "true",
                              "provenance": "Vendor X API"}, format="multipart")  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["format"] == "external" and body["status"] == "ready"
    assert body["provenance"] == "Vendor X API"
    assert body["status_note"] == "predictions imported, not run here"


def test_api_external_with_a_file_or_a_normal_upload_without_one_is_a_400(api):
    url = reverse("registry:api-versions", args=["vendor-cutout"])
    response = api.post(url, {"version": "1.0", "external": "true", "spec": "{}"},
                        format="multipart")  # fmt: skip
    assert response.status_code == 400
    assert "no runnable file and no spec" in response.content.decode()
    response = api.post(url, {"version": "1.0"}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()["error"]["fields"]
    assert not ModelVersion.objects.exists()
