"""Run page, run JSON/API, per-image pages and the compare page name biased evidence per role."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from evalsite.evals.selectors import biased_evidence, run_biased_evidence
from models.models import ModelVersion
from tests.evals.factories import tiny_spec, user_with
from tests.releases.builders import build_release_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def declare(version: ModelVersion, **training: list[str]) -> None:
    """Store a spec whose `training` declares the given digests (as registration would)."""
    version.spec = {**tiny_spec(), "training": training}
    version.save(update_fields=["spec"])


def digests(world: Any, indexes: range) -> list[str]:
    return [world.items[k].image_sha256 for k in indexes]


@pytest.fixture
def world() -> Any:
    w = build_release_world(n=30)
    # The candidate (1.1.0) was selected on items 0-13 and tuned on 10-19; 12 trains nothing here.
    declare(
        w.candidate.model_version,
        image_sha256=["f" * 64],
        selected_image_sha256=digests(w, range(14)),
        tuned_image_sha256=digests(w, range(10, 20)),
    )
    return w


@pytest.fixture
def client() -> Client:
    c = Client()
    c.force_login(user_with("researcher"))
    return c


def test_overlap_is_counted_per_role_and_version_from_item_digests(world):
    got = biased_evidence(
        versions=[world.candidate.model_version, world.baseline.model_version],
        dataset_version=world.version,
    )
    assert [(o.role, o.version, o.items, o.total) for o in got] == [
        ("tuned", "subject-lift:1.1.0", 10, 30),
        ("selected", "subject-lift:1.1.0", 14, 30),
    ]
    assert got[1].stems == tuple(f"img{k:03d}" for k in range(14))
    assert run_biased_evidence(world.baseline) == []  # 1.0.0 declares nothing


def test_the_run_json_and_api_carry_biased_evidence(world, client):
    doc = json.loads(client.get(reverse("evals:json", args=[world.candidate.pk])).content)
    assert [(e["role"], e["version"], e["items"]) for e in doc["biased_evidence"]] == [
        ("tuned", "subject-lift:1.1.0", 10),
        ("selected", "subject-lift:1.1.0", 14),
    ]
    rows = {r["stem"]: r for r in doc["per_image"]}
    assert rows["img012"]["declared_roles"] == ["tuned", "selected"]
    assert rows["img025"]["declared_roles"] == [] and not rows["img025"]["in_training_data"]
    api = APIClient()
    api.force_authenticate(user_with("researcher"))
    assert len(api.get(f"/runs/api/runs/{world.candidate.pk}/").json()["biased_evidence"]) == 2
    assert api.get(f"/runs/api/runs/{world.baseline.pk}/").json()["biased_evidence"] == []


def test_the_run_page_says_how_many_items_and_which_role(world, client):
    html = client.get(world.candidate.get_absolute_url()).content.decode()
    assert 'id="biased-evidence"' in html
    assert (
        "14 of 30 items were used to select subject-lift 1.1.0 (selected); numbers on this set "
        "favour it" in html
    )
    assert "10 of 30 items were used to tune subject-lift 1.1.0 (tuned)" in html
    clean = client.get(world.baseline.get_absolute_url()).content.decode()
    assert 'id="biased-evidence"' not in clean


def test_each_picture_is_badged_with_its_roles(world, client):
    html = client.get(reverse("evals:items", args=[world.candidate.pk]) + "?sort=stem").content
    assert html.decode().count('class="badge failed declared-role"') == 14 + 10
    item = world.items[12]
    page = client.get(reverse("evals:item", args=[world.candidate.pk, item.pk])).content.decode()
    assert "among the images it was tuned, selected on" in page


def test_the_compare_page_names_the_overlap_of_both_runs(world, client):
    declare(world.baseline.model_version, image_sha256=digests(world, range(3)))
    url = f"/runs/compare/?a={world.baseline.pk}&b={world.candidate.pk}"
    html = client.get(url).content.decode()
    assert "3 of 30 items were used to train subject-lift 1.0.0 (trained)" in html
    assert "14 of 30 items were used to select subject-lift 1.1.0 (selected)" in html
