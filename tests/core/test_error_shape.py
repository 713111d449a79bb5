"""One convention per concern at the doors: every domain error maps to one HTTP status through
`evalsite.core.errors.STATUS_OF`, and every JSON error — REST API and rating pages alike — has
one shape, `{"error": {"code", "message", "fields"?}}`, never the text of an unexpected error."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from evalsite.core.errors import STATUS_OF, Conflict, NotFound, Refused, status_of
from evalsite.datasets.errors import DatasetNotFound
from evalsite.evals.errors import RunNotFound
from evalsite.releases.errors import ReportNotFound
from models.errors import VersionNotFound
from pipelines.parse import InvalidNumber
from ratings.forms import SubmitInvalid
from ratings.selectors import CampaignNotFound
from ratings.services.assign import AssignmentNotFound, CampaignClosed, RatingError
from tests.evals.factories import user_with

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

LEAK = "SECRET_KEY=abc in /srv/evalsite/settings.py"


def _client(role: str = "researcher") -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user_with(role))
    return client


@pytest.mark.parametrize(
    "exc, status",
    [
        (RunNotFound("x"), 404),
        (ReportNotFound("x"), 404),
        (VersionNotFound("x"), 404),
        (DatasetNotFound("x"), 404),
        (CampaignNotFound("x"), 404),
        (AssignmentNotFound("x"), 404),
        (CampaignClosed("x"), 409),
        (RatingError("x"), 400),
        (SubmitInvalid("x"), 400),
        (InvalidNumber("x"), 400),
    ],
)
def test_every_apps_domain_error_has_its_status_in_the_one_table(exc, status) -> None:
    assert status_of(exc) is not None and status_of(exc)[0] == status
    assert isinstance(exc, tuple(cls for cls, _, _ in STATUS_OF))


def test_an_error_that_is_no_domain_error_has_no_status() -> None:
    assert status_of(RuntimeError("x")) is None and status_of(ValueError("x")) is None
    assert {NotFound, Conflict, Refused} <= {cls for cls, _, _ in STATUS_OF}


def test_a_bad_api_body_names_each_field_in_the_one_shape() -> None:
    response = _client().post("/runs/api/runs/", {}, content_type="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"model", "dataset"}
    assert "model:" in error["message"] and "dataset:" in error["message"]


def test_an_unknown_reference_in_an_api_body_is_a_field_error() -> None:
    response = _client().post(
        "/runs/api/runs/", {"model": "nobody:1", "dataset": "x"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["model"][0].startswith("No model family")


def test_an_api_answer_without_credentials_has_the_shape_and_its_code() -> None:
    response = Client().get("/runs/api/runs/")
    assert response.status_code in {401, 403}
    assert response.json()["error"]["code"] in {"not_authenticated", "authentication_failed"}


def test_an_unexpected_api_error_answers_500_without_its_text() -> None:
    with mock.patch("evalsite.evals.api.views.run_list", side_effect=RuntimeError(LEAK)):
        response = _client().get("/runs/api/runs/")
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "server_error",
            "message": "the server could not handle this request; nothing was stored",
        }
    }
    assert "SECRET" not in response.content.decode()


def test_an_unexpected_error_in_an_attribute_submit_never_leaks_its_text() -> None:
    with mock.patch("ratings.views.attributes.parse_seconds", side_effect=RuntimeError(LEAK)):
        response = _client("annotator").post(
            "/rate/attributes/api/submit",
            json.dumps({"token": "t", "seconds": 1}),
            content_type="application/json",
        )
    assert response.status_code == 500
    assert "SECRET" not in response.content.decode()
    assert response.json()["error"]["code"] == "server_error"


def test_a_too_deep_attribute_submit_is_a_400_naming_the_body() -> None:
    body = "[" * 100_000 + "]" * 100_000
    response = _client("annotator").post(
        "/rate/attributes/api/submit", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("body:")


def test_someone_elses_attribute_task_is_a_404_in_the_one_shape() -> None:
    response = _client("annotator").post(
        "/rate/attributes/api/submit",
        json.dumps({"token": "nope", "skin_tone": "3", "perceived_gender": "man"}),
        content_type="application/json",
    )
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "this task is not yours or does not exist",
    }


@pytest.mark.parametrize(
    "path",
    [
        "/models/nobody/",
        "/models/nobody/1.0/",
        "/datasets/nobody/",
        "/datasets/imports/4242/",
        "/rate/campaigns/4242/",
        "/rate/attributes/campaigns/4242/",
    ],
)
def test_pages_answer_404_for_a_selectors_not_found(path: str) -> None:
    assert _client().get(path).status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/models/api/families/nobody/versions/", "/models/api/versions/4242/"],
)
def test_api_answers_404_in_the_one_shape(path: str) -> None:
    response = _client().get(path)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_a_missing_gate_is_a_404_in_the_one_shape() -> None:
    response = _client().get("/releases/api/gate/4242/")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No release gate #4242."}}


def test_a_command_prints_a_selectors_not_found_and_exits_1() -> None:
    with pytest.raises(CommandError, match=r"--run: No run #4242\.") as caught:
        call_command("fairness_report", "--run", "4242")
    assert caught.value.returncode == 1
