"""Alias permissions and history; pages by role; upload form; own API tokens."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied
from rest_framework.authtoken.models import Token

from models import services
from models.errors import RegistryError
from models.models import Alias, AliasMove, ModelVersion, VersionStatus
from tests.registry.factories import VersionFactory
from tests.registry.tiny_models import spec_for

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def test_researcher_cannot_move_production_but_a_manager_can_and_history_is_kept(
    researcher, manager
):
    v1, v2 = VersionFactory(version="1.0.0"), VersionFactory(version="1.1.0")
    with pytest.raises(PermissionDenied, match="Only release managers and admins"):
        services.alias_move(
            family=v1.family, name="production", version=v1, user=researcher, reason="try"
        )
    services.alias_move(
        family=v1.family, name="production", version=v1, user=manager, reason="first release"
    )
    services.alias_move(
        family=v1.family, name="production", version=v2, user=manager, reason="1.1.0 wins"
    )
    services.alias_move(
        family=v1.family, name="production", version=v2, user=manager, reason="no-op"
    )
    moves = list(
        AliasMove.objects.values_list(
            "from_version__version", "to_version__version", "moved_by__username", "reason"
        )
    )
    assert moves == [("1.0.0", "1.1.0", "mo", "1.1.0 wins"), (None, "1.0.0", "mo", "first release")]
    services.alias_move(
        family=v1.family, name="candidate", version=v1, user=researcher, reason="try 1.0.0"
    )
    assert Alias.objects.get(name="candidate").updated_by == researcher


@pytest.mark.parametrize(
    ("name", "reason", "words"),
    [("1beta", "r", "Invalid alias"), ("candidate", "  ", "a reason is required")],
)
def test_alias_names_start_with_a_letter_and_moves_need_a_reason(researcher, name, reason, words):
    v = VersionFactory(version="1.0.0")
    with pytest.raises(RegistryError, match=words):
        services.alias_move(family=v.family, name=name, version=v, user=researcher, reason=reason)


def test_pages_need_the_researcher_role(client, annotator, researcher):
    v = VersionFactory(version="1.0.0")
    urls = [
        "/models/",
        "/models/subject-lift/",
        "/models/subject-lift/1.0.0/",
        "/models/upload/",
        "/models/tokens/",
    ]
    for url in urls:
        assert client.get(url).status_code == 302, url  # to the login page
    client.force_login(annotator)
    for url in urls:
        assert client.get(url).status_code == 403, url
    client.force_login(researcher)
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert client.get("/models/subject-lift/9.9.9/").status_code == 404
    assert v.ref.encode() in client.get("/models/subject-lift/1.0.0/").content


def test_version_page_shows_status_reason_spec_lineage_card_and_compare_link(client, researcher):
    prod = VersionFactory(version="1.0.0", card="# Card\nval IoU 0.71")
    services.alias_move(
        family=prod.family, name="production", version=prod, user=None, reason="demo"
    )
    cand = VersionFactory(version="1.1.0", parent=prod)
    VersionFactory(
        version="1.1.0+onnx",
        parent=cand,
        format="onnx",
        conversion={"source": "subject-lift:1.1.0", "target": "onnx"},
    )
    bad = VersionFactory(
        version="2.0.0", status=VersionStatus.REJECTED, rejection_reason="alpha output contains NaN"
    )
    client.force_login(researcher)
    page = client.get(cand.get_absolute_url()).content.decode()
    assert 'class="badge ready"' in page and "1.1.0+onnx" in page
    assert "/runs/compare/?a=subject-lift%3A1.0.0&amp;b=subject-lift%3A1.1.0" in page
    assert "&quot;gate_threshold&quot;: 0.5" in page and ">1.0.0</a> →" in page
    assert "No evaluation runs of this version yet." in page
    assert "val IoU 0.71" in client.get(prod.get_absolute_url()).content.decode()
    rejected = client.get(bad.get_absolute_url()).content.decode()
    assert "alpha output contains NaN" in rejected and 'class="badge rejected"' in rejected
    family = client.get("/models/subject-lift/").content.decode()
    assert "production" in family and "demo" in family


def test_alias_move_form_forbids_production_to_researchers_and_allows_managers(
    client, researcher, manager
):
    VersionFactory(version="1.0.0")
    form = {"name": "production", "version": "1.0.0", "reason": "ship"}
    client.force_login(researcher)
    assert client.post("/models/subject-lift/aliases/move/", form).status_code == 403
    assert not Alias.objects.exists()
    client.force_login(manager)
    response = client.post("/models/subject-lift/aliases/move/", form)
    assert response.status_code == 302
    assert AliasMove.objects.get().moved_by == manager


def test_upload_form_registers_and_queues_validation(
    client, researcher, tiny, no_broker, django_capture_on_commit_callbacks
):
    client.force_login(researcher)
    with open(tiny["pt2"], "rb") as fh, django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/models/upload/",
            {
                "family": "subject-lift",
                "version": "1.3.0",
                "file": fh,
                "spec_text": json.dumps(spec_for("torch_export")),
                "notes": "web",
            },
            HTTP_X_REQUESTED_WITH="XMLHttpRequest",
        )
    assert response.status_code == 200
    assert response.json() == {"redirect": "/models/subject-lift/1.3.0/", "status": "uploaded"}
    row = ModelVersion.objects.get(version="1.3.0")
    assert row.created_by == researcher and row.validation_job and no_broker.call_count == 1


def test_upload_form_explains_the_size_limit_and_a_missing_spec(
    client, researcher, settings, tmp_path
):
    settings.MAX_UPLOAD_MB = 1
    big = tmp_path / "big.pt2"
    big.write_bytes(b"\0" * (1024 * 1024 + 1))
    client.force_login(researcher)
    with open(big, "rb") as fh:
        response = client.post(
            "/models/upload/",
            {"family": "f", "version": "1.0.0", "file": fh},
            HTTP_X_REQUESTED_WITH="XMLHttpRequest",
        )
    errors = response.json()["errors"]
    assert response.status_code == 400
    assert any("the upload limit is 1 MB" in e for e in errors)
    assert any("Attach the model's .spec.json" in e for e in errors)
    page = client.get("/models/upload/").content.decode()
    assert "registry/upload.js" in page and 'data-max-bytes="1048576"' in page


def test_users_create_and_revoke_their_own_token_and_the_key_is_shown_once(
    client, researcher, manager
):
    other = Token.objects.create(user=manager)
    client.force_login(researcher)
    created = client.post(
        "/models/tokens/", {"action": "create", "scopes": ["upload", "evaluate"]}
    ).content.decode()
    token = Token.objects.get(user=researcher)
    assert token.key in created and "shown only now" in created
    assert token.key not in client.get("/models/tokens/").content.decode()
    client.post("/models/tokens/", {"action": "revoke"})
    assert not Token.objects.filter(user=researcher).exists()
    assert Token.objects.filter(pk=other.pk).exists(), "revoking never touches others' tokens"
