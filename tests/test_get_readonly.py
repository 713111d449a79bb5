"""Pages never write: every GET URL of the URL conf, requested under a database write guard.

The URL conf is walked at test time, so a new page is covered the day it is added. Arguments come
from a seeded database (a set, two finished runs with results, an open rating campaign and an open
attribute-labelling campaign, so the annotator's pages have work they could lease); users log in
before the guard is installed (login itself writes `last_login` and the session).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.evals.factories import user_with
from tests.ratings.builders import World, build_world, open_campaign

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|TRUNCATE)\b", re.I)
#: Routes that are not pages: the admin's catch-all redirect.
NOT_PAGES = ("admin/(?P<url>.*)$",)


def walk(resolver: URLResolver, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from walk(entry, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry


@contextmanager
def write_guard(record: list[str]) -> Iterator[None]:
    def guard(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if WRITE.match(sql):
            record.append(sql[:200])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(guard):
        yield


def first_pk(label: str) -> int | None:
    try:
        model = apps.get_model(label)
    except LookupError:
        return None
    row = model.objects.order_by("pk").first()
    return None if row is None else int(row.pk)


class Seeded:
    def __init__(self, world: World, campaign: Any, attribute_campaign: Any) -> None:
        run = world.runs[0]
        item = run.dataset_version.items.order_by("pk").first()
        self.values: dict[str, Any] = {
            "run": run.pk,
            "campaign": campaign.pk,
            "attribute_campaign": attribute_campaign.pk,
            "version_pk": run.model_version.pk,
            "item_id": item.pk,
            "import_id": first_pk("datasets.DatasetImport") or first_pk("datasets.Import") or 1,
            "report": first_pk("releases.ReleaseReport") or 1,
            "name": run.dataset_version.dataset.name,
            "prefix": run.dataset_version.content_hash[:8],
            "family": run.model_version.family.name,
            "version": run.model_version.version,
        }

    def url(self, route: str) -> str | None:
        if route in NOT_PAGES:
            return None
        route = route.replace("^(?P<app_label>", "(?P<app_label>")
        route = re.sub(r"\(\?P<app_label>[^)]*\)", "core", route).replace("^", "").rstrip("$")
        v = self.values

        def value(match: re.Match[str]) -> str:
            name = match.group(2)
            if name == "pk":
                if route.startswith("rate/attributes/campaigns/"):
                    return str(v["attribute_campaign"])
                if route.startswith("rate/campaigns/"):
                    return str(v["campaign"])
                if route.startswith("releases/"):
                    return str(v["report"])
                if route.startswith("models/api/versions/"):
                    return str(v["version_pk"])
                return str(v["run"])
            fixed = {"kind": "image", "role": "web_overlay", "fmt": "csv", "object_id": "1",
                     "token": "none", "slot": "a"}  # fmt: skip
            if name == "name" and "/aliases/" in route:
                return "production"
            return str(fixed.get(name, v.get(name, "1")))

        return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route)


@pytest.fixture
def seeded(tmp_path: Path, settings: Any) -> Seeded:
    from ratings.services.attributes import attribute_campaign_create

    settings.MEDIA_ROOT = tmp_path / "media"
    world = build_world(tmp_path)
    campaign = open_campaign(world, name="Read-only check", gold_ratio=0.15)
    labels = attribute_campaign_create(
        name="Read-only labels", dataset_version=world.version, overlap=1, open_now=True
    )
    return Seeded(world, campaign, labels)


def get_every_page(
    login: Callable[[], Client], seeded: Seeded
) -> tuple[dict[str, list[str]], list[str]]:
    """Every GET URL once, each with a freshly logged-in client (a first visit is the case
    that would create state), under the write guard."""
    writes: dict[str, list[str]] = {}
    errors: list[str] = []
    for route, _ in walk(get_resolver()):
        url = seeded.url(route)
        if url is None:
            continue
        client = login()
        record: list[str] = []
        with write_guard(record):
            response = client.get(url)
        if record:
            writes[url] = record
        if response.status_code >= 500:
            errors.append(f"{url}: {response.status_code}")
    return writes, errors


def report(writes: dict[str, list[str]]) -> str:
    return "GET handlers wrote to the database:\n" + "\n".join(
        f"{url}: {sql}" for url, sqls in writes.items() for sql in sqls
    )


def test_no_get_handler_writes_to_the_database(seeded: Seeded) -> None:
    user_model = apps.get_model("auth", "User")
    admin = user_model.objects.create_superuser("root", "r@x.org", "pw")

    def login() -> Client:
        client = Client()
        client.force_login(admin)
        return client

    writes, errors = get_every_page(login, seeded)
    assert writes == {}, report(writes)
    assert errors == [], errors


def test_the_annotators_pages_lease_nothing_on_get(seeded: Seeded) -> None:
    """Fresh annotators (nothing leased yet, work waiting in both campaigns): the first visit of
    the rating and labelling pages is the GET that used to lease; leasing is a POST now."""
    from ratings.models import Assignment

    count = iter(range(10_000))

    def login() -> Client:
        client = Client()
        client.force_login(user_with("annotator", f"fresh-annotator-{next(count)}"))
        return client

    writes, errors = get_every_page(login, seeded)
    assert writes == {}, report(writes)
    assert errors == [], errors
    assert not Assignment.objects.exists()
    # The pages did have work to offer (else "nothing written" would prove nothing).
    client = login()
    for url in ("/rate/api/state", "/rate/attributes/api/state"):
        state = client.get(url).json()
        assert state["available"] is True and state["current"] is None, (url, state)
