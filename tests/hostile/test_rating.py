"""Hostile rating submits: every body gets a 4xx JSON answer naming the field, never a 500 or a
debug page, and no rating is stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from ratings.models import Assignment, Campaign, CampaignStatus, Mode, Rating
from ratings.services.assign import assignment_queue
from ratings.services.campaigns import campaign_create
from tests.evals.factories import signed_in_client
from tests.ratings.builders import World, build_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

SUBMIT = "/rate/api/submit"
JSON = "application/json"


@pytest.fixture
def world(db: Any, tmp_path: Path, settings: Any) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    return build_world(tmp_path, n=4, runs=2, annotators=2)


def _campaign(world: World, mode: str = Mode.PAIRWISE) -> Campaign:
    return campaign_create(
        name=f"hostile-{mode}", dataset_version=world.version, runs=world.runs, items_per_pair=2,
        open_now=True, mode=mode,
    )  # fmt: skip


def _client(user: Any) -> Client:
    return signed_in_client(user, raise_request_exception=False)


def _token(user: Any) -> str:
    return str(assignment_queue(user=user).assignments[0].token)


def _nothing_stored() -> None:
    assert Rating.objects.count() == 0
    assert not Assignment.objects.filter(submitted_at__isnull=False).exists()


def body(token: str, **fields: Any) -> dict[str, Any]:
    return {"token": token, "choice": "left", "reasons": [], "seconds": 2.5, **fields}


# (case id, raw body or a function of the token, content type, status, words in the error)
RAW: list[Any] = [
    pytest.param(lambda t: f'{{"token": "{t}", "choice": "left", "seconds": NaN}}', JSON, 400,
                 "seconds: expected a finite number", id="rate-seconds-nan"),
    pytest.param(lambda t: f'{{"token": "{t}", "choice": "left", "seconds": Infinity}}', JSON,
                 400, "seconds: expected a finite number", id="rate-seconds-infinity"),
    pytest.param(lambda t: f'{{"token": "{t}", "choice": "left", "seconds": 1e309}}', JSON, 400,
                 "finite number", id="rate-seconds-overflow"),
    pytest.param(lambda t: json.dumps(body(t, seconds=-5)), JSON, 400, "from 0",
                 id="rate-seconds-negative"),
    pytest.param(lambda t: json.dumps(body(t, seconds="12")), JSON, 400, "number of seconds",
                 id="rate-seconds-string"),
    pytest.param(lambda t: json.dumps(body(t, seconds=[1])), JSON, 400, "number of seconds",
                 id="rate-seconds-list"),
    pytest.param(lambda t: json.dumps(body(t, seconds=10**400)), JSON, 400, "finite number",
                 id="rate-seconds-huge-int"),
    pytest.param(lambda t: json.dumps(body(t, choice="both_good")), JSON, 400,
                 "choice: expected one of", id="rate-unknown-choice"),
    pytest.param(lambda t: json.dumps(body(t, reasons="edges")), JSON, 400,
                 "reasons: expected a list", id="rate-reasons-string"),
    pytest.param(lambda t: json.dumps(body(t, reasons=["<script>"])), JSON, 400, "unknown tag",
                 id="rate-reasons-unknown"),
    pytest.param(lambda t: json.dumps(body(t, annotator=1)), JSON, 400, "unknown field",
                 id="rate-unknown-field"),
    pytest.param(lambda t: "{nope", JSON, 400, "not valid UTF-8 JSON", id="rate-invalid-json"),
    pytest.param(lambda t: b"\xff\xfe", JSON, 400, "not valid UTF-8 JSON",
                 id="rate-invalid-utf8"),
    pytest.param(lambda t: "[1, 2]", JSON, 400, "send a JSON object", id="rate-json-array"),
    pytest.param(lambda t: "[" * 100_000, JSON, 400, "", id="rate-deep-nesting"),
    pytest.param(lambda t: "x" * (11 * 2**20), JSON, 400, "too large", id="rate-huge-body"),
    pytest.param(lambda t: f"token={t}&choice=left", "application/x-www-form-urlencoded", 400,
                 "application/json", id="rate-wrong-content-type"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "content_type", "status", "words"), RAW)
def test_hostile_submit_bodies_are_refused_and_store_nothing(
    world: World, make: Any, content_type: str, status: int, words: str
) -> None:
    _campaign(world)
    ann = world.annotators[0]
    response = _client(ann).post(SUBMIT, make(_token(ann)), content_type=content_type)
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert words in response.json()["error"]["message"]
    _nothing_stored()


def test_rate_score_bool_is_refused_in_an_absolute_campaign(world: World) -> None:
    _campaign(world, Mode.ABSOLUTE)
    ann = world.annotators[0]
    payload = {"token": _token(ann), "score": True, "seconds": 1}
    response = _client(ann).post(SUBMIT, payload, content_type=JSON)
    assert response.status_code == 400
    assert "score: expected a whole number" in response.json()["error"]["message"]
    _nothing_stored()


def test_rate_other_users_token_is_404_and_leaves_their_task(world: World) -> None:
    _campaign(world)
    victim, attacker = world.annotators
    token = _token(victim)
    _token(attacker)
    response = _client(attacker).post(SUBMIT, body(token), content_type=JSON)
    assert response.status_code == 404 and "not yours" in response.json()["error"]["message"]
    _nothing_stored()


def test_rate_closed_campaign_refuses_ratings(world: World) -> None:
    campaign = _campaign(world)
    ann = world.annotators[0]
    token = _token(ann)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.CLOSED)
    response = _client(ann).post(SUBMIT, body(token), content_type=JSON)
    assert response.status_code == 409
    assert "campaign is closed" in response.json()["error"]["message"]
    _nothing_stored()


def test_rate_server_error_is_json_without_details_even_in_debug(
    world: World, settings: Any
) -> None:
    settings.DEBUG = True
    _campaign(world)
    ann = world.annotators[0]
    token = _token(ann)
    boom = RuntimeError("SECRET_KEY=abc in /srv/evalsite/settings.py")
    with mock.patch("ratings.views.annotate.rating_submit", side_effect=boom):
        response = _client(ann).post(SUBMIT, body(token), content_type=JSON)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    text = response.content.decode()
    assert "SECRET_KEY" not in text and "Traceback" not in text and "settings" not in text
    assert response.json() == {
        "error": {
            "code": "server_error",
            "message": "the server could not handle this request; nothing was stored",
        }
    }
    _nothing_stored()


def test_a_valid_submit_still_works(world: World) -> None:
    _campaign(world)
    ann = world.annotators[0]
    response = _client(ann).post(SUBMIT, body(_token(ann), reasons=["edges"]), content_type=JSON)
    assert response.status_code == 200, response.content
    rating = Rating.objects.get()
    assert rating.seconds == 2.5 and rating.reasons == ["edges"]


CASE_IDS = {p.id for p in RAW} | {
    "rate-score-bool", "rate-other-users-token", "rate-closed-campaign",
    "rate-server-error-is-json",
}  # fmt: skip
assert reverse  # the URL name is what the page posts to; keep the import honest


ATTRIBUTE_BODIES = [
    '{"token": "%s", "skin_tone": "3", "perceived_gender": "woman", "seconds": NaN}',
    '{"token": "%s", "skin_tone": "3", "perceived_gender": "woman", "seconds": 1e309}',
    '{"token": "%s", "skin_tone": "3", "perceived_gender": "woman", "seconds": -1}',
    '{"token": "%s", "skin_tone": NaN, "perceived_gender": "woman", "seconds": 1}',
    '{"token": "%s", "skin_tone": ["3"], "perceived_gender": {"a": 1}, "seconds": 1}',
    '{"token": ["%s"], "skin_tone": "3", "perceived_gender": "woman"}',
    '{"token": "%s", "seconds": "%s"}',
    "[%s]",
    "{nope %s",
]


def test_no_body_makes_the_attribute_submit_answer_500(world: World) -> None:
    from ratings.services.attributes import attribute_campaign_create, attribute_queue

    attribute_campaign_create(name="attrs", dataset_version=world.version, open_now=True)
    ann = world.annotators[0]
    token = attribute_queue(user=ann).assignments[0].token
    client = _client(ann)
    for template in ATTRIBUTE_BODIES:
        raw = template.replace("%s", token)
        response = client.post("/rate/attributes/api/submit", raw, content_type=JSON)
        assert response.status_code in (400, 404), (raw, response.content[:200])
        assert response["Content-Type"] == "application/json"
    _nothing_stored()
