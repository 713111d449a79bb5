"""Every URL pattern with hostile numbers in each path and query parameter, and every POST route
with deeply nested and oversized JSON: never a 500, never Python's own message.

Routes come from the URL resolver (tests/test_permissions.iter_routes) and are requested as the
roles that may use them (MATRIX), one role per hostile value in turn. The query parameters of a
route are the ones its view reads: found in the view's source (`request.GET.get("x")`,
`query_params.get("x")`, `query_int(request, "x")`, a form built with `initial=request.GET`
contributes its fields); `test_every_query_parameter_read_anywhere_is_fuzzed` fails when code
reads a parameter no route is fuzzed with (a helper reading `request.GET` must be named in
EXTRA_KEYS).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import get_resolver

from evalsite.datasets.models import DatasetImport
from ratings.models import Assignment
from ratings.services.campaigns import campaign_create
from tests.ratings.builders import build_world
from tests.test_permissions import LEVELS, MATRIX, ROLES, Fixture, Route, _user, iter_routes

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

ROOT = Path(__file__).resolve().parents[2]
# Not digits to int() ("²"), digits to int() but not ASCII ("١٢"), past every integer column,
# negative, zero, and ten thousand digits (past Python's int() string limit).
HOSTILE = ["²", "١٢", "99999999999999999999999", "-1", "0", "9" * 10_000]
PYTHON_MESSAGES = ("invalid literal for int()", "Traceback", "could not convert string",
                   "Exceeds the limit", "OverflowError")  # fmt: skip
# Query parameters read by helpers outside the view function's own source.
EXTRA_KEYS: dict[str, set[str]] = {"fairness/compare/": {"a", "b"}}

_READS = [
    re.compile(r"""(?:GET|query_params|POST)\.get\(\s*["'](\w+)["']"""),
    re.compile(r"""query_(?:int|id)\(\s*request\s*,\s*["'](\w+)["']"""),
]
_FORM_FROM_QUERY = re.compile(r"(\w+Form)\([^\n]*initial=request\.GET")


def _view_source(callback: Any) -> tuple[str, dict[str, Any]]:
    target = getattr(callback, "view_class", None) or getattr(callback, "cls", None) or callback
    target = inspect.unwrap(target)
    try:
        source = inspect.getsource(target)
    except OSError:  # @api_view: a class made at import, its handlers call the function
        funcs = [c.cell_contents for f in vars(target).values() if inspect.isfunction(f)
                 for c in f.__closure__ or () if inspect.isfunction(c.cell_contents)]  # fmt: skip
        target = inspect.unwrap(funcs[0])
        source = "\n".join(inspect.getsource(inspect.unwrap(f)) for f in funcs)
    module = inspect.getmodule(target)
    return source, vars(module) if module else {}


def _keys_in(source: str, namespace: dict[str, Any]) -> set[str]:
    keys = {m for pattern in _READS for m in pattern.findall(source)}
    for form_name in _FORM_FROM_QUERY.findall(source):
        form = namespace.get(form_name)
        if form is not None:
            keys |= set(form.base_fields)
    return keys


def _callbacks() -> dict[str, Any]:
    """Route pattern -> view callback, walking the resolver like iter_routes."""
    out: dict[str, Any] = {}

    def walk(patterns: list[Any], prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if hasattr(p, "url_patterns"):
                if getattr(p, "namespace", None) != "admin":
                    walk(p.url_patterns, route)
            else:
                out[route] = p.callback

    walk(get_resolver().url_patterns, "")
    return out


def query_keys() -> dict[str, set[str]]:
    keys: dict[str, set[str]] = {}
    for pattern, callback in _callbacks().items():
        source, namespace = _view_source(callback)
        found = _keys_in(source, namespace) | EXTRA_KEYS.get(pattern, set())
        if found:
            keys[pattern] = found
    return keys


def test_every_query_parameter_read_anywhere_is_fuzzed() -> None:
    fuzzed = set().union(*query_keys().values())
    read = set()
    for folder in ("evalsite", "models", "ratings"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts or path.name == "inputs.py":
                continue
            text = path.read_text(encoding="utf-8")
            if "request" in text:
                read |= {m for pattern in _READS[1:] for m in pattern.findall(text)}
                read |= set(re.findall(r"""(?:GET|query_params)\.get\(\s*["'](\w+)["']""", text))
    assert sorted(read - fuzzed) == [], "query parameters read where no route's view shows them"
    assert {"set", "rev", "a", "b", "page", "status"} <= fuzzed


@pytest.fixture
def fixture(tmp_path: Path, settings: Any) -> Fixture:
    settings.MEDIA_ROOT = tmp_path / "media"
    world = build_world(tmp_path, n=2, runs=2, annotators=1)
    campaign = campaign_create(name="fuzz", dataset_version=world.version, runs=world.runs,
                               items_per_pair=2, open_now=True)  # fmt: skip
    imp = DatasetImport.objects.create(name="fuzz-import", upload="none.zip")
    token = Assignment.objects.values_list("token", flat=True).first() or "no-token"
    return Fixture(world=world, campaign_pk=campaign.pk, token=token, import_pk=imp.pk)


_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _url(pattern: str, values: dict[str, Any]) -> str:
    """The route with its parameters filled in as text (reverse() refuses `²` for <int:…>; the
    resolver must see it and answer 404)."""
    return "/" + _PARAM.sub(lambda m: str(values[m.group(2)]), pattern)


def _cases(fx: Fixture) -> Iterator[tuple[Route, str, str, dict[str, str] | None]]:
    """(route, method, url, query) for every hostile value in every path and query parameter."""
    keys = query_keys()
    for route in iter_routes():
        row = MATRIX.get(route.pattern)
        if row is None or route.name == "admin:index":
            continue
        good = row.kwargs(fx)
        for param in _PARAM.findall(route.pattern):
            for value in HOSTILE:
                url = _url(route.pattern, {**good, param[1]: value})
                for method in row.methods:
                    yield route, method, url, None
        if "get" in row.methods:
            for key in sorted(keys.get(route.pattern, ())):
                for value in HOSTILE:
                    yield route, "get", _url(route.pattern, good), {key: value}


def test_no_hostile_number_in_a_path_or_query_answers_500(fixture: Fixture) -> None:
    users = {role: _user(role) for role in ROLES}
    clients: dict[str, Client] = {}
    for role, user in users.items():
        clients[role] = Client(raise_request_exception=False)
        if user is not None:
            clients[role].force_login(user)
    failures: list[str] = []
    tried = 0
    for route, method, url, query in _cases(fixture):
        allowed = sorted(LEVELS[MATRIX[route.pattern].level] - {"anonymous"}) or ["anonymous"]
        role = allowed[tried % len(allowed)]
        response = getattr(clients[role], method)(url, query or {})
        tried += 1
        body = response.content[:4000].decode("utf-8", "replace")
        where = f"{method.upper()} {url[:120]} {str(query)[:80]} as {role}"
        if response.status_code >= 500:
            failures.append(f"{where}: {response.status_code}")
        elif any(text in body for text in PYTHON_MESSAGES):
            failures.append(f"{where}: Python's own message in the answer: {body[:200]}")
    assert not failures, "\n".join(failures)
    assert tried > 500


CASE_IDS = {"url-fuzz-numbers", "api-deep-nesting", "api-huge-json"}
# url-fuzz-numbers: test_no_hostile_number_in_a_path_or_query_answers_500
# api-deep-nesting, api-huge-json: test_no_post_route_answers_500_to_deep_or_huge_json

DEEP = "[" * 100_000
HUGE = '{"x": "' + "a" * (11 * 1024 * 1024) + '"}'


# The REST API routes that read a JSON body: each must refuse these bodies naming why.
JSON_ROUTES = {
    "models/api/families/<str:family>/versions/", "runs/api/runs/", "runs/api/runs/import/",
    "models/api/families/<str:family>/aliases/<str:name>/", "releases/api/reports/",
    "fairness/api/runs/<int:pk>/",
}  # fmt: skip
REASON = {DEEP: "nested deeper than 64 levels", HUGE: "the body is over 10485760 bytes"}


def _counts() -> dict[str, int]:
    from django.apps import apps

    return {m._meta.label: m.objects.count() for m in apps.get_models()
            if m._meta.app_label in {"evals", "registry", "ratings", "releases", "fairness",
                                     "datasets", "core"}}  # fmt: skip


def test_no_post_route_answers_500_to_deep_or_huge_json(fixture: Fixture) -> None:
    users = {role: _user(role) for role in ROLES}
    tried = 0
    failures: list[str] = []
    for route in iter_routes():
        row = MATRIX.get(route.pattern)
        if row is None or "post" not in row.methods or route.name == "admin:index":
            continue
        role = sorted(LEVELS[row.level] - {"anonymous"})[0]
        client = Client(raise_request_exception=False)
        client.force_login(users[role])
        url = _url(route.pattern, row.kwargs(fixture))
        for body in (DEEP, HUGE):
            before = _counts()
            response = client.generic("POST", url, body, content_type="application/json")
            tried += 1
            where = f"POST {url} ({len(body)} bytes) as {role}: {response.status_code}"
            if response.status_code >= 500:
                failures.append(f"{where} {response.content[:200]!r}")
            elif 400 <= response.status_code < 500 and _counts() != before:
                failures.append(f"{where}: refused, but rows were written")
            if route.pattern in JSON_ROUTES:
                ok = response.status_code == 400 and response["Content-Type"] == "application/json"
                detail = response.json()["error"]["message"] if ok else response.content[:300]
                if REASON[body] not in str(detail):
                    failures.append(f"{where}: expected 400 '{REASON[body]}', got {detail!r}")
    assert not failures, "\n".join(failures)
    assert tried >= 40
