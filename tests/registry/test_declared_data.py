"""Declared trained / tuned / selected images: every door refuses a bad digest, naming the field."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from models.models import ModelVersion
from tests.evals.factories import token_client
from tests.registry.test_api import upload
from tests.registry.tiny_models import spec_for

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

GOOD = "c" * 64
BAD_FIELD = "training.selected_image_sha256[1]"


def bad_spec() -> dict:
    return spec_for(
        "torch_export",
        training={"image_sha256": [GOOD], "selected_image_sha256": [GOOD, "C0FFEE"]},
    )


def assert_refused_naming_the_field(row: ModelVersion) -> None:
    assert row.status == "rejected"
    assert BAD_FIELD in row.rejection_reason
    assert "sha256 of an image file" in row.rejection_reason and "'C0FFEE'" in row.rejection_reason
    assert not row.file  # refused bytes are never stored


def test_the_cli_refuses_a_bad_selected_digest(tiny, tmp_path):
    spec_path = tmp_path / "bad.spec.json"
    spec_path.write_text(json.dumps(bad_spec()))
    out = StringIO()
    with pytest.raises(CommandError) as err:
        call_command(
            "register_model", str(tiny["pt2"]), "--family", "subject-lift", "--version", "1.0.0",
            "--spec", str(spec_path), stdout=out,
        )  # fmt: skip
    assert err.value.returncode == 1 and BAD_FIELD in out.getvalue()
    assert_refused_naming_the_field(ModelVersion.objects.get())


def test_the_api_refuses_a_bad_selected_digest(tiny, researcher, no_broker):
    response = upload(token_client(researcher), tiny["pt2"], spec=bad_spec())
    assert response.status_code == 201  # recorded as rejected, like any refused upload
    assert response.json()["status"] == "rejected"
    assert BAD_FIELD in response.json()["rejection_reason"]
    assert_refused_naming_the_field(ModelVersion.objects.get())
    assert no_broker.call_count == 0


def test_the_web_form_refuses_a_bad_selected_digest(client, researcher, tiny, no_broker):
    client.force_login(researcher)
    with open(tiny["pt2"], "rb") as fh:
        response = client.post(
            "/models/upload/",
            {"family": "subject-lift", "version": "1.3.0", "file": fh,
             "spec_text": json.dumps(bad_spec())},
            follow=True,
        )  # fmt: skip
    row = ModelVersion.objects.get(version="1.3.0")
    assert_refused_naming_the_field(row)
    assert response.redirect_chain[-1][0] == row.get_absolute_url()
    assert BAD_FIELD in response.content.decode()  # the message and the version page name it


def test_accepted_roles_are_counted_on_the_version_page(client, researcher, tiny):
    from tests.registry.test_validation import register

    spec = spec_for(
        "torchscript",
        training={
            "image_sha256": [GOOD],
            "tuned_image_sha256": ["d" * 64, "e" * 64],
            "selected_image_sha256": ["d" * 64, "e" * 64],
        },
    )
    row = register(tiny["torchscript"], spec).version
    assert row.status == "ready"
    client.force_login(researcher)
    html = client.get(row.get_absolute_url()).content.decode()
    assert "1 image trained on, 2 images tuned on, 2 images selected on" in html
    assert "&lt;2 sha256 digests&gt;" in html  # the shown spec summarises every digest list
