"""Two copies of one CI request (same user, same idempotency key) at the same instant: one gate,
one job; both answers name it. The interleaving is forced — both pass the "no gate under this key
yet" look-up before either inserts — so the unique (user, key) row decides, on SQLite and on
PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any
from unittest import mock

import pytest
from django.test import Client

from evalsite.core.models import Job
from evalsite.releases import gate_api
from evalsite.releases.models import ReleaseGate
from models.services import api_token_create
from tests.evals.factories import user_with
from tests.releases.builders import build_release_world
from tests.threads import run_in_threads


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_make_one_gate() -> None:
    world = build_release_world()
    key = api_token_create(user=user_with("researcher", "ci"), scopes="evaluate,report").key
    body = {"candidate": "subject-lift:candidate", "dataset": world.version.spec}
    barrier = threading.Barrier(2, timeout=20)
    original = gate_api.release_gate_existing

    def looked_up(**kwargs: Any) -> Any:
        found = original(**kwargs)
        barrier.wait()  # both have seen "no gate yet" before either creates one
        return found

    answers: list[Any] = []

    def post(_: int) -> None:
        client = Client(HTTP_AUTHORIZATION=f"Token {key}")
        answers.append(client.post("/releases/api/gate/", body, content_type="application/json",
                                   HTTP_IDEMPOTENCY_KEY="run-9"))  # fmt: skip

    with mock.patch.object(gate_api, "release_gate_existing", looked_up):
        errors = run_in_threads(post, [0, 1])
    assert not errors and not barrier.broken
    assert sorted(a.status_code for a in answers) == [200, 202], [a.content for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert ReleaseGate.objects.count() == 1
    assert Job.objects.filter(kind="releases.gate").count() == 1
