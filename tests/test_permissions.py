"""Every URL pattern × role × method, generated from the URL conf.

`MATRIX` names, for each route of the URL conf, who may reach it (platform contract, roles table)
and the URL arguments to use. A route missing from `MATRIX` fails `test_every_url_has_a_row`, so a
new page or API cannot ship without saying who may use it. For each row, each role and each of
GET/POST the test checks:

* a role that may not use the route is refused: anonymous → redirect to the login page or 401/403;
  a logged-in user → 403 (405 when the method is refused before the role, nothing is served);
* a role that may use it is not refused (not 401/403, not sent to the login page) and never gets
  a 500, whatever the (empty) body.

The Django admin is one row (its index) because its own URL conf is Django's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from evalsite.datasets.models import DatasetImport
from ratings.models import Assignment
from ratings.services.campaigns import campaign_create
from tests.ratings.builders import World, build_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

ROLES = ("anonymous", "annotator", "researcher", "release_manager", "admin")
METHODS = ("get", "post")

# Who may use a route: a level names the roles allowed (capabilities nest, platform contract).
LEVELS: dict[str, frozenset[str]] = {
    "public": frozenset(ROLES),
    "login": frozenset(ROLES) - {"anonymous"},
    "annotator": frozenset({"annotator"}),
    "research": frozenset({"researcher", "release_manager", "admin"}),
    "release": frozenset({"release_manager", "admin"}),
    "admin": frozenset({"admin"}),
}


@dataclass
class Fixture:
    """The rows the matrix points its URLs at."""

    world: World
    campaign_pk: int
    token: str
    import_pk: int

    @property
    def run(self) -> Any:
        return self.world.runs[0]

    @property
    def family(self) -> str:
        return str(self.run.model_version.family.name)

    @property
    def version(self) -> str:
        return str(self.run.model_version.version)

    @property
    def item_id(self) -> int:
        return int(self.world.version.items.order_by("pk").first().pk)


Kwargs = Callable[[Fixture], dict[str, Any]]


def _none(f: Fixture) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Row:
    level: str
    kwargs: Kwargs = _none
    methods: tuple[str, ...] = METHODS
    data: dict[str, Any] = field(default_factory=dict)  # the form body sent with POST


MATRIX: dict[str, Row] = {
    # core
    "": Row("login"),
    "healthz": Row("public"),
    "favicon.ico": Row("public"),
    "system/": Row("admin"),
    "login/": Row("public"),
    "logout/": Row("public"),
    "admin/": Row("admin"),
    "api/schema/": Row("login"),
    "api/docs/": Row("login"),
    # datasets
    "sets/": Row("research"),
    "sets/upload/": Row("research"),
    "sets/imports/<int:import_id>/": Row("research", lambda f: {"import_id": f.import_pk}),
    "sets/imports/<int:import_id>/progress/": Row("research", lambda f: {"import_id": f.import_pk}),
    "sets/files/<int:item_id>/<str:kind>/": Row(
        "research", lambda f: {"item_id": f.item_id, "kind": "thumb"}
    ),
    "sets/<str:name>/": Row("research", lambda f: {"name": f.world.version.dataset.name}),
    "sets/<str:name>/<str:prefix>/": Row(
        "research",
        lambda f: {"name": f.world.version.dataset.name, "prefix": f.world.version.short_hash},
    ),
    # registry
    "models/": Row("research"),
    "models/upload/": Row("research"),
    "models/upload/external/": Row("research"),
    "models/tokens/": Row("research"),
    "models/api/families/": Row("research"),
    "models/api/families/<str:family>/versions/": Row("research", lambda f: {"family": f.family}),
    "models/api/families/<str:family>/aliases/<str:name>/": Row(
        "research", lambda f: {"family": f.family, "name": "candidate"}
    ),
    "models/api/versions/<int:pk>/": Row("research", lambda f: {"pk": f.run.model_version.pk}),
    "models/<str:family>/": Row("research", lambda f: {"family": f.family}),
    "models/<str:family>/aliases/move/": Row("research", lambda f: {"family": f.family}),
    "models/<str:family>/<str:version>/": Row(
        "research", lambda f: {"family": f.family, "version": f.version}
    ),
    "models/<str:family>/<str:version>/convert/": Row(
        "research", lambda f: {"family": f.family, "version": f.version}
    ),
    # evaluation runs
    "runs/": Row("research"),
    "runs/start/": Row("research"),
    "runs/import/": Row("research"),
    "runs/compare/": Row("research"),
    "runs/compare/intervals/": Row("research", methods=("post",)),
    "runs/api/runs/": Row("research"),
    "runs/api/runs/import/": Row("research"),
    "runs/api/runs/<int:pk>/": Row("research", lambda f: {"pk": f.run.pk}),
    "runs/api/runs/<int:pk>/results/": Row("research", lambda f: {"pk": f.run.pk}),
    "runs/api/runs/<int:pk>/cancel/": Row("research", lambda f: {"pk": f.run.pk}),
    "runs/api/runs/<int:pk>/reproduce/": Row("research", lambda f: {"pk": f.run.pk}),
    "runs/<int:pk>/": Row("research", lambda f: {"pk": f.run.pk}),
    "runs/<int:pk>/progress.json": Row("research", lambda f: {"pk": f.run.pk}),
    "runs/<int:pk>/cancel/": Row("research", lambda f: {"pk": f.run.pk}),
    "runs/<int:pk>/rerun/": Row("research", lambda f: {"pk": f.run.pk}),
    "runs/<int:pk>/reproduce/": Row("research", lambda f: {"pk": f.run.pk}),
    "runs/<int:pk>/items/": Row("research", lambda f: {"pk": f.run.pk}),
    "runs/<int:pk>/items/<int:item_id>/": Row(
        "research", lambda f: {"pk": f.run.pk, "item_id": f.item_id}
    ),
    "runs/<int:pk>/items/<int:item_id>/<str:role>": Row(
        "research", lambda f: {"pk": f.run.pk, "item_id": f.item_id, "role": "photo"}
    ),
    "runs/<int:pk>/results.csv": Row("research", lambda f: {"pk": f.run.pk}),
    "runs/<int:pk>/results.json": Row("research", lambda f: {"pk": f.run.pk}),
    # crowd rating
    "rate/": Row("annotator"),
    "rate/start/": Row("annotator", methods=("post",)),
    "rate/api/state": Row("annotator"),
    "rate/api/lease": Row("annotator", methods=("post",)),
    "rate/api/submit": Row("annotator"),
    "rate/api/votes": Row("annotator"),
    "rate/i/<str:token>/<str:slot>": Row(
        "annotator", lambda f: {"token": f.token, "slot": "photo"}
    ),
    "rate/campaigns/": Row("research"),
    "rate/campaigns/new/": Row("research"),
    "rate/campaigns/<int:pk>/": Row("research", lambda f: {"pk": f.campaign_pk}),
    "rate/campaigns/<int:pk>/status/": Row("research", lambda f: {"pk": f.campaign_pk}),
    "rate/campaigns/<int:pk>/recompute/": Row("research", lambda f: {"pk": f.campaign_pk}),
    "rate/campaigns/<int:pk>/export.<str:fmt>": Row(
        "research", lambda f: {"pk": f.campaign_pk, "fmt": "csv"}
    ),
    # attribute annotation (the fixture's campaign is pairwise: its attribute pages answer 404)
    "rate/attributes/": Row("annotator", methods=("get",)),
    "rate/attributes/start/": Row("annotator", methods=("post",)),
    "rate/attributes/api/state": Row("annotator", methods=("get",)),
    "rate/attributes/api/lease": Row("annotator", methods=("post",)),
    "rate/attributes/api/submit": Row("annotator", methods=("post",)),
    "rate/attributes/campaigns/new/": Row("research"),
    "rate/attributes/campaigns/<int:pk>/": Row(
        "research", lambda f: {"pk": f.campaign_pk}, methods=("get",)
    ),
    "rate/attributes/campaigns/<int:pk>/status/": Row(
        "research", lambda f: {"pk": f.campaign_pk}, methods=("post",)
    ),
    "rate/attributes/campaigns/<int:pk>/accept/": Row(
        "research", lambda f: {"pk": f.campaign_pk}, methods=("post",)
    ),
    # fairness (the fixture's set has no person attributes: 409 / the message, never refused)
    "fairness/runs/<int:pk>/": Row("research", lambda f: {"pk": f.run.pk}, methods=("get",)),
    "fairness/compare/": Row("research", methods=("get",)),
    "fairness/api/runs/<int:pk>/": Row("research", lambda f: {"pk": f.run.pk}),
    # releases (a missing report id answers 404 to the roles that may look: not refused)
    "releases/": Row("research", methods=("get",)),
    "releases/reports/": Row("research"),
    "releases/reports/<int:pk>/": Row("research", lambda f: {"pk": 999999}, methods=("get",)),
    "releases/reports/<int:pk>/report.json": Row(
        "research", lambda f: {"pk": 999999}, methods=("get",)
    ),
    "releases/reports/<int:pk>/report.html": Row(
        "research", lambda f: {"pk": 999999}, methods=("get",)
    ),
    "releases/reports/<int:pk>/report.csv": Row(
        "research", lambda f: {"pk": 999999}, methods=("get",)
    ),
    "releases/reports/<int:pk>/decide/": Row(
        "release", lambda f: {"pk": 999999}, methods=("post",)
    ),
    "releases/reports/<int:pk>/rebuild/": Row(
        "research", lambda f: {"pk": 999999}, methods=("post",)
    ),
    "releases/history/": Row("research", methods=("get",)),
    "releases/gates/": Row("release"),
    "releases/api/reports/": Row("research"),
    "releases/api/reports/<int:pk>/": Row("research", lambda f: {"pk": 999999}, methods=("get",)),
    "releases/api/reports/<int:pk>/decision/": Row(
        "release", lambda f: {"pk": 999999}, methods=("post",)
    ),
    "releases/api/reports/<int:pk>/rebuild/": Row(
        "research", lambda f: {"pk": 999999}, methods=("post",)
    ),
    "releases/api/gate/": Row("research", methods=("post",)),
    "releases/api/gate/<int:pk>/": Row("research", lambda f: {"pk": 999999}, methods=("get",)),
}


@dataclass(frozen=True)
class Route:
    pattern: str  # the full route, e.g. "models/<str:family>/"
    name: str  # "namespace:name" for reverse()


def iter_routes(
    patterns: list[Any] | None = None, prefix: str = "", namespace: str = ""
) -> Iterator[Route]:
    """Every route of the URL conf; the admin site counts as one route (its index)."""
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            if p.namespace == "admin":
                yield Route(route, "admin:index")
                continue
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from iter_routes(p.url_patterns, route, ns)
        elif isinstance(p, URLPattern):
            yield Route(route, f"{namespace}{p.name}" if p.name else "")


def test_every_url_has_a_row() -> None:
    routes = {r.pattern for r in iter_routes()}
    missing = sorted(routes - set(MATRIX))
    assert not missing, (
        "URL patterns without a row in tests/test_permissions.py MATRIX (say who may use them): "
        f"{missing}"
    )
    stale = sorted(set(MATRIX) - routes)
    assert not stale, f"MATRIX rows for URL patterns that no longer exist: {stale}"


def _user(role: str) -> User | None:
    if role == "anonymous":
        return None
    user = User.objects.create_user(
        f"perm-{role}", password="pw-perm", is_superuser=role == "admin", is_staff=role == "admin"
    )
    if role != "admin":
        user.groups.set(Group.objects.filter(name=role))
    return user


@pytest.fixture
def fixture(tmp_path: Path, settings: Any) -> Fixture:
    settings.MEDIA_ROOT = tmp_path / "media"
    world = build_world(tmp_path, n=4, runs=2, annotators=1)
    campaign = campaign_create(
        name="perm", dataset_version=world.version, runs=world.runs, items_per_pair=2,
        open_now=True,
    )  # fmt: skip
    imp = DatasetImport.objects.create(name="perm-import", upload="none.zip")
    token = Assignment.objects.values_list("token", flat=True).first() or "no-token"
    return Fixture(world=world, campaign_pk=campaign.pk, token=token, import_pk=imp.pk)


def _refused(response: Any) -> bool:
    if response.status_code in (401, 403, 405):
        return True
    location = response.get("Location", "") if response.status_code in (301, 302) else ""
    return "/login/" in location  # the site's login page or the admin's


def test_every_url_and_role_and_method(fixture: Fixture) -> None:
    users = {role: _user(role) for role in ROLES}
    failures: list[str] = []
    for route in iter_routes():
        row = MATRIX.get(route.pattern)
        if row is None:
            continue  # reported by test_every_url_has_a_row
        url = reverse(route.name, kwargs=row.kwargs(fixture) or None)
        allowed = LEVELS[row.level]
        for role in ROLES:
            for method in row.methods:
                client = Client(raise_request_exception=False)
                if users[role] is not None:
                    client.force_login(users[role])
                response = getattr(client, method)(url, row.data)
                code = response.status_code
                refused = _refused(response)
                where = f"{method.upper()} {url} ({route.pattern}) as {role}: {code}"
                if code >= 500:
                    failures.append(f"{where} — a server error")
                elif row.level == "public" and code in (401, 403):
                    failures.append(f"{where} — refused, but the route is public")
                elif row.level != "public" and role in allowed and refused and code != 405:
                    failures.append(f"{where} — refused, but {row.level} may use it")
                elif role not in allowed and not refused:
                    failures.append(f"{where} — served, but only {row.level} may use it")
    assert not failures, "\n".join(failures)


def test_moving_production_needs_the_release_role_through_every_door(fixture: Fixture) -> None:
    """The one rule the URL level cannot show: same URL, `production` in the body."""
    from models.models import AliasMove

    users = {role: _user(role) for role in ROLES}
    family, version = fixture.family, fixture.version
    doors = {
        "web": (f"/models/{family}/aliases/move/", {"name": "Production", "version": version,
                                                     "reason": "ship"}),
        "api": (f"/models/api/families/{family}/aliases/PRODUCTION/", {"version": version,
                                                                       "reason": "ship"}),
    }  # fmt: skip
    for door, (url, data) in doors.items():
        for role in ROLES:
            client = Client(raise_request_exception=False)
            if users[role] is not None:
                client.force_login(users[role])
            before = AliasMove.objects.count()
            code = client.post(url, data).status_code
            moved = AliasMove.objects.count() > before or code in (200, 302)
            if role in LEVELS["release"]:
                assert code in (200, 302), f"{door} as {role}: {code}"
            else:
                assert code in (302, 401, 403) and AliasMove.objects.count() == before, (
                    f"{door} as {role}: {code}"
                )
                assert not (moved and role != "anonymous"), f"{door} as {role} moved production"
