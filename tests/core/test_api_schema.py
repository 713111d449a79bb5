"""The OpenAPI description: generated from the code, valid OpenAPI 3, listing every API route of
the URL conf with the token header, error bodies and the scope each operation needs; the docs page
loads its assets from the platform under the strict script policy."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from openapi_spec_validator import validate
from rest_framework.views import APIView

from evalsite.core.scopes import SCOPES, view_scope
from tests.evals.factories import user_with
from tests.test_permissions import iter_routes

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def api_views() -> list[tuple[str, Any]]:
    """(route, view class) of every DRF view in the URL conf but the schema's own pages."""
    from django.urls import get_resolver

    out = []
    for route in iter_routes():
        if route.pattern.startswith("api/"):
            continue
        match = get_resolver().resolve("/" + re.sub(r"<[^>]+>", "1", route.pattern))
        cls = getattr(match.func, "cls", None)
        if cls is not None and issubclass(cls, APIView):
            out.append((route.pattern, cls))
    return out


def schema() -> dict[str, Any]:
    client = Client()
    client.force_login(user_with("researcher"))
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return dict(response.json())


def test_the_schema_validates_and_lists_every_api_route() -> None:
    doc = schema()
    validate(doc)  # raises on an invalid OpenAPI document
    assert doc["openapi"].startswith("3.")
    listed = {re.sub(r"\{[^}]+\}", "{}", p) for p in doc["paths"]}
    routes = {re.sub(r"<[^>]+>", "{}", "/" + r) for r, _ in api_views()}
    assert len(routes) >= 17
    assert routes - listed == set(), "API routes missing from the OpenAPI schema"
    assert "/releases/api/gate/" in listed


def test_every_operation_documents_token_errors_and_its_scope() -> None:
    doc = schema()
    scheme = doc["components"]["securitySchemes"]["tokenAuth"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "Authorization"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert {"tokenAuth": []} in op["security"], (path, method)
            assert {"401", "403"} <= set(op["responses"]), (path, method)
            body = op["responses"]["403"]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/Error"}
            scope = op["x-required-scope"]
            if method == "get":
                assert scope is None
            else:
                assert scope in SCOPES and f"`{scope}`" in op["description"], (path, method)
    decision = doc["paths"]["/releases/api/reports/{id}/decision/"]["post"]
    assert decision["x-required-scope"] == "decide"
    assert "reason" in str(doc["components"]["schemas"]["DecisionRequestRequest"])


def test_every_api_view_declares_the_scope_of_each_of_its_methods() -> None:
    missing = []
    for route, cls in api_views():
        for method in cls.http_method_names:
            if method in ("options", "head") or not hasattr(cls, method):
                continue
            declared, scope = view_scope(cls, method)
            if not declared:
                missing.append(f"{method.upper()} /{route}")
            elif method != "get" and scope is None:
                missing.append(f"{method.upper()} /{route} writes with no scope")
    assert not missing, missing


def test_the_docs_page_uses_platform_assets_under_the_script_policy() -> None:
    client = Client()
    client.force_login(user_with("researcher"))
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    policy = page["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["script-src"] == "'self'", "no inline scripts, no eval"
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert scripts and all(s.startswith("/") for s in scripts), scripts
    assert not re.search(r"<script(?![^>]*src=)[^>]*>\s*\S", html), "an inline script"
    assert "cdn" not in html.lower()
    for src in scripts:
        assert client.get(src).status_code == 200, src
    assert Client().get("/api/schema/").status_code in (401, 403)


def test_the_error_schema_is_the_one_error_shape_the_api_answers() -> None:
    doc = schema()
    error = doc["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"error", "exit_code"} and error["required"] == ["error"]
    detail = doc["components"]["schemas"]["ErrorDetail"]
    assert set(detail["properties"]) == {"code", "message", "fields"}
    assert set(detail["required"]) == {"code", "message"}
    # and an actual answer has exactly that shape
    client = Client()
    client.force_login(user_with("researcher"))
    body = client.get("/runs/api/runs/4242/").json()
    assert set(body) == {"error"} and set(body["error"]) <= set(detail["properties"])
