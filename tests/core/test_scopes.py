"""Scoped API tokens: a CI token (upload, evaluate, report) is refused decisions, alias moves and
anything beyond its user's role; expired keys get a 401 saying so; each use is recorded; the
command and the page create them; keys made before scopes keep their role's scopes."""

from __future__ import annotations

import importlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from evalsite.core.models import TokenPolicy
from models.services import api_token_create
from tests.evals.factories import user_with

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def client_for(key: str, address: str = "10.1.2.3") -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {key}", REMOTE_ADDR=address)


def test_a_ci_token_of_a_manager_cannot_decide_move_aliases_or_create_campaigns() -> None:
    manager = user_with("release_manager", "mgr")
    key = api_token_create(user=manager, scopes="upload,evaluate").key
    c = client_for(key)
    decide = c.post("/releases/api/reports/1/decision/", {"decision": "approve", "reason": "x"})
    assert decide.status_code == 403 and "'decide' scope" in decide.json()["error"]["message"]
    move = c.post("/models/api/families/f/aliases/production/", {"version": "1", "reason": "r"})
    assert move.status_code == 403 and "'alias' scope" in move.json()["error"]["message"]
    report = c.post("/releases/api/reports/", {"candidate": "f:1", "dataset": "s"})
    assert report.status_code == 403 and "'report' scope" in report.json()["error"]["message"]
    # campaigns are created on web pages: any token is refused there, with the reason
    for page in ("/rate/campaigns/new/", "/releases/reports/1/decide/", "/models/f/aliases/move/"):
        refused = c.post(page, {"name": "c"})
        assert refused.status_code == 403 and "REST API" in refused.json()["error"]["message"], page
    # reads and the token's own scopes pass the scope check (then the view answers)
    assert c.get("/models/api/families/").status_code == 200
    upload = c.post("/models/api/families/f/versions/", {})
    assert upload.status_code == 400  # past the permission check: the body is what is wrong
    # the same user's unscoped key may decide (the view then answers 404 for a missing report)
    full = client_for(api_token_create(user=manager).key)
    assert full.post("/releases/api/reports/999/decision/",
                     {"decision": "approve", "reason": "x"}).status_code == 404  # fmt: skip


def test_a_token_never_holds_more_than_its_users_role() -> None:
    from django.core.exceptions import PermissionDenied

    researcher = user_with("researcher", "res")
    with pytest.raises(PermissionDenied, match="'decide'"):
        api_token_create(user=researcher, scopes=["upload", "decide"])
    with pytest.raises(ValueError, match="unknown scope 'deploy'"):
        api_token_create(user=researcher, scopes="upload,deploy")
    token = api_token_create(user=researcher)
    assert token.policy.scopes == ["upload", "evaluate", "report", "alias", "campaign"]


def test_an_expired_token_gets_a_401_naming_the_expiry_and_uses_are_recorded() -> None:
    researcher = user_with("researcher", "res")
    token = api_token_create(user=researcher, expires_at=timezone.now() + timedelta(days=1))
    assert client_for(token.key, "10.9.8.7").get("/models/api/families/").status_code == 200
    policy = TokenPolicy.objects.get(token=token)
    assert policy.last_used_from == "10.9.8.7" and policy.last_used_at is not None
    client_for(token.key, "10.9.8.8").get("/models/api/families/")
    assert TokenPolicy.objects.get(token=token).last_used_from == "10.9.8.8"
    TokenPolicy.objects.filter(token=token).update(expires_at=timezone.now() - timedelta(1))
    answer = client_for(token.key).get("/models/api/families/")
    assert answer.status_code == 401 and "expired at" in answer.json()["error"]["message"]


def test_the_command_creates_shows_and_revokes() -> None:
    user_with("researcher", "ci-bot")
    out = StringIO()
    call_command("api_token", "create", "--user", "ci-bot", "--scopes", "upload,evaluate,report",
                 "--expires-days", "30", stdout=out)  # fmt: skip
    key = out.getvalue().strip()
    policy = Token.objects.get(key=key).policy
    assert policy.scopes == ["upload", "evaluate", "report"] and policy.expires_at is not None
    shown = StringIO()
    call_command("api_token", "show", "--user", "ci-bot", stdout=shown)
    assert "scopes upload,evaluate,report" in shown.getvalue()
    err = StringIO()
    with pytest.raises(SystemExit) as exc:
        call_command("api_token", "create", "--user", "ci-bot", "--scopes", "decide", stderr=err)
    assert exc.value.code == 1 and "'decide'" in err.getvalue()
    call_command("api_token", "revoke", "--user", "ci-bot", stdout=StringIO())
    assert not Token.objects.filter(key=key).exists()


def test_the_page_creates_a_scoped_expiring_token() -> None:
    researcher = user_with("researcher", "res")
    c = Client()
    c.force_login(researcher)
    form = {"action": "create", "scopes": ["upload", "report"], "expires_days": "7", "name": "ci"}
    page = c.post("/models/tokens/", form).content.decode()
    policy = Token.objects.get(user=researcher).policy
    assert policy.scopes == ["upload", "report"] and policy.name == "ci"
    assert timedelta(days=6) < policy.expires_at - timezone.now() <= timedelta(days=7)
    assert "upload, report" in page
    refused = c.post("/models/tokens/", {"action": "create", "scopes": ["decide"]})
    assert "does not allow the &#x27;decide&#x27; scope" in refused.content.decode()
    assert Token.objects.get(user=researcher).policy.scopes == ["upload", "report"]


def test_the_migration_gives_old_keys_their_roles_scopes() -> None:
    manager = user_with("release_manager", "mgr")
    old = Token.objects.create(user=manager)  # a key from before scopes: no policy row
    migration = importlib.import_module("evalsite.core.migrations.0005_token_policy")
    from django.apps import apps

    migration.backfill(apps, None)
    assert TokenPolicy.objects.get(token=old).scopes[-1] == "decide"
    ok = client_for(old.key).post("/releases/api/reports/999/decision/",
                                  {"decision": "approve", "reason": "x"})  # fmt: skip
    assert ok.status_code == 404
