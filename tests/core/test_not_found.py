"""A selector's NotFound (a domain error, not Http404) becomes a 404 page, a 404 JSON body in the
REST API, and a message from a command — each door translates it, none imports the others."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from evalsite.evals.errors import RunNotFound
from evalsite.evals.selectors import run_get
from tests.evals.factories import user_with

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def _client() -> Client:
    client = Client()
    client.force_login(user_with("researcher"))
    return client


def test_the_selector_raises_a_domain_error_naming_the_run() -> None:
    with pytest.raises(RunNotFound, match=r"No run #4242\."):
        run_get(4242)


def test_a_page_answers_404() -> None:
    assert _client().get("/runs/4242/").status_code == 404


def test_the_api_answers_404_json_with_the_message() -> None:
    response = _client().get("/runs/api/runs/4242/")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No run #4242."}}


def test_the_command_prints_the_message() -> None:
    with pytest.raises(CommandError, match="--reproduce: No run #4242"):
        call_command("run_eval", "--reproduce", "4242")


def test_a_missing_release_report_is_a_404_page_and_a_404_api_body() -> None:
    client = Client()
    client.force_login(user_with("release_manager"))
    assert client.get("/releases/reports/4242/").status_code == 404
    response = client.get("/releases/api/reports/4242/")
    assert response.status_code == 404
    error = {"code": "not_found", "message": "No release report #4242."}
    assert response.json() == {"error": error}
