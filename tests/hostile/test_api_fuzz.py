"""No body makes a REST API endpoint answer 500: a catalogue of hostile bodies against every
POST endpoint of the token API, each answered 4xx with nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User

from evalsite.evals.models import EvalRun
from models.models import Alias, AliasMove, ModelVersion
from tests.evals.factories import token_client
from tests.ratings.builders import World, build_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

BODIES: list[tuple[str, str]] = [
    (
        '{"model": "subject-lift:1.0.0", "dataset": "%s", "postprocess": {"threshold": NaN}}',
        "application/json",
    ),
    (
        '{"model": "subject-lift:1.0.0", "dataset": "%s", "postprocess": {"threshold": 1e309}}',
        "application/json",
    ),
    (
        '{"model": "subject-lift:1.0.0", "dataset": "%s", "postprocess": {"threshold": "x"}}',
        "application/json",
    ),
    (
        '{"model": "subject-lift:1.0.0", "dataset": "%s", "postprocess": {"upsample": [1, 2]}}',
        "application/json",
    ),
    (
        '{"model": "subject-lift:1.0.0", "dataset": "%s", "postprocess": {"min_area": -1e300}}',
        "application/json",
    ),
    ('{"model": "subject-lift:1.0.0", "dataset": "%s", "postprocess": "all"}', "application/json"),
    ('{"model": ["subject-lift:1.0.0"], "dataset": {"%s": 1}}', "application/json"),
    ('{"model": "subject-lift:1.0.0\\u200b", "dataset": "%s"}', "application/json"),
    ('{"model": "subject-lift:%s", "dataset": "%s:zzzz"}', "application/json"),
    (
        '{"model": "subject-lift:1.0.0", "dataset": "%s", "runtime": "../../bin/sh"}',
        "application/json",
    ),
    (
        '{"model": "subject-lift:1.0.0", "dataset": "%s", "parity": "yes please"}',
        "application/json",
    ),
    ("[%s]", "application/json"),
    ("{nope %s", "application/json"),
    ("model=subject-lift:1.0.0&dataset=%s&runtime=../x", "application/x-www-form-urlencoded"),
    ("<xml>%s</xml>", "application/xml"),
    ("x" * 100_000 + "%s", "application/json"),
]


@pytest.fixture
def world(db: Any, tmp_path: Path, settings: Any) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    return build_world(tmp_path, n=2, runs=2, annotators=0)


def test_no_body_makes_the_runs_api_answer_500(world: World) -> None:
    user = User.objects.create_user("fuzz", password="pw-fuzz")
    user.groups.set(Group.objects.filter(name="researcher"))
    client = token_client(user)
    runs_before = EvalRun.objects.count()
    dataset = world.version.dataset.name
    for template, content_type in BODIES:
        raw = template.replace("%s", dataset)
        response = client.generic("POST", "/runs/api/runs/", raw, content_type=content_type)
        assert 400 <= response.status_code < 500, (raw[:120], response.status_code,
                                                   response.content[:300])  # fmt: skip
    assert EvalRun.objects.count() == runs_before
    family = world.runs[0].model_version.family.name
    for template, content_type in BODIES:
        raw = template.replace("%s", "1.0.0")
        for url in (f"/models/api/families/{family}/aliases/candidate/",
                    f"/models/api/families/{family}/versions/"):  # fmt: skip
            response = client.generic("POST", url, raw, content_type=content_type)
            assert 400 <= response.status_code < 500, (url, raw[:120], response.content[:300])
    assert not Alias.objects.filter(name="candidate").exists() and not AliasMove.objects.exists()
    assert ModelVersion.objects.count() == 2


def test_no_body_makes_any_api_route_answer_500(tmp_path: Path, settings: Any) -> None:
    """Every route of the URL conf with `api` in it, POSTed every body as a role that may use it."""
    from django.test import Client
    from django.urls import reverse

    from tests.test_permissions import MATRIX, Fixture, _user, iter_routes

    settings.MEDIA_ROOT = tmp_path / "media"
    world = build_world(tmp_path, n=2, runs=2, annotators=1)
    from evalsite.datasets.models import DatasetImport
    from ratings.models import Assignment
    from ratings.services.campaigns import campaign_create

    campaign = campaign_create(name="fuzz", dataset_version=world.version, runs=world.runs,
                               items_per_pair=2, open_now=True)  # fmt: skip
    fixture = Fixture(
        world=world, campaign_pk=campaign.pk,
        token=Assignment.objects.values_list("token", flat=True).first() or "none",
        import_pk=DatasetImport.objects.create(name="fuzz", upload="none.zip").pk,
    )  # fmt: skip
    users = {"admin": _user("admin")}
    tried = 0
    for route in iter_routes():
        row = MATRIX.get(route.pattern)
        if "api" not in route.pattern or row is None or "post" not in row.methods:
            continue
        rater = row.level == "annotator"
        client = Client(raise_request_exception=False)
        client.force_login(world.annotators[0] if rater else users["admin"])
        url = reverse(route.name, kwargs=row.kwargs(fixture) or None)
        for template, content_type in BODIES:
            raw = template.replace("%s", fixture.token)
            response = client.generic("POST", url, raw, content_type=content_type)
            assert response.status_code < 500, (url, raw[:100], response.content[:300])
            tried += 1
    assert tried >= 8 * len(BODIES)
