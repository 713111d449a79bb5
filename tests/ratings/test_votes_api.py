"""The rating page's outbox endpoint (api/votes), its lease depth, the inbox and the
"no subject shown" flag, through the Django test client.

The outbox re-sends whatever a lost reply left unconfirmed, so a batch must be idempotent per
task token; a vote that can never be stored is answered with its reason (the page drops it and
says so) while the others in the batch are stored; a malformed batch stores nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from evalsite.evals.models import ItemResult
from ratings.forms import VOTES_MAX
from ratings.models import Assignment, Campaign, CampaignStatus, Rating, Task
from ratings.services.assign import MAX_QUEUE_DEPTH, inbox
from ratings.services.attributes import attribute_campaign_create
from tests.evals.factories import signed_in_client
from tests.ratings.builders import World, open_campaign

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]
JSON = "application/json"


def _open(world: World, **kw: Any) -> Campaign:
    return open_campaign(world, **{"name": "Outbox", "items_per_pair": 8, **kw})


def _lease(c: Client, depth: int) -> dict[str, Any]:
    response = c.post(reverse("ratings:lease"), json.dumps({"depth": depth}), content_type=JSON)
    assert response.status_code == 200, response.content
    return dict(response.json())


def _votes(c: Client, votes: list[dict[str, Any]], depth: int = 4) -> Any:
    body = json.dumps({"votes": votes, "depth": depth})
    return c.post(reverse("ratings:votes"), body, content_type=JSON)


def test_a_batch_is_stored_in_order_and_a_resent_batch_stores_nothing_more(world: World) -> None:
    _open(world)
    ann = world.annotators[0]
    c = signed_in_client(ann)
    state = _lease(c, 5)
    queue = [t["token"] for t in state["queue"]]
    assert len(queue) == 5 == Assignment.objects.filter(annotator=ann).count()
    assert state["current"]["token"] == queue[0]
    votes = [{"token": queue[0], "choice": "left", "seconds": 1.5},
             {"token": queue[1], "choice": "tie", "reasons": ["edges"]},
             {"token": queue[2], "choice": "both_bad"}]  # fmt: skip
    response = _votes(c, votes, depth=5)
    assert response.status_code == 200
    body = response.json()
    assert [(r["token"], r["status"]) for r in body["results"]] == [(t, 201) for t in queue[:3]]
    stored = Rating.objects.filter(annotator=ann).order_by("pk")
    assert [(r.assignment.token, r.shown_choice) for r in stored] == [
        (v["token"], v["choice"]) for v in votes
    ]
    assert stored[1].reasons == ["edges"] and stored[0].seconds == 1.5
    # The reply holds the next tasks: none of the rated ones, topped up to the depth asked.
    after = [t["token"] for t in body["state"]["queue"]]
    assert len(after) == 5 and not set(after) & set(queue[:3]) and after[:2] == queue[3:5]
    assert body["state"]["progress"]["done"] == 3
    # A lost reply: the outbox sends the same batch again. Answered as saved, stored once.
    again = _votes(c, votes, depth=5).json()
    assert [r["status"] for r in again["results"]] == [200, 200, 200]
    assert Rating.objects.filter(annotator=ann).count() == 3


def test_votes_that_can_never_be_stored_are_answered_with_their_reason(world: World) -> None:
    campaign = _open(world)
    ann, other = world.annotators[0], world.annotators[1]
    mine = [t["token"] for t in _lease(signed_in_client(ann), 3)["queue"]]
    theirs = [t["token"] for t in _lease(signed_in_client(other), 2)["queue"]]
    body = _votes(signed_in_client(ann), [{"token": mine[0], "choice": "left"},
                                 {"token": theirs[0], "choice": "left"},
                                 {"token": mine[1], "choice": "right"}]).json()  # fmt: skip
    assert [r["status"] for r in body["results"]] == [201, 404, 201]
    assert "not yours" in body["results"][1]["error"]
    assert Rating.objects.filter(annotator=other).count() == 0
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.CLOSED)
    closed = _votes(signed_in_client(ann), [{"token": mine[2], "choice": "left"}]).json()
    assert closed["results"][0]["status"] == 409 and "closed" in closed["results"][0]["error"]
    assert Rating.objects.filter(annotator=ann).count() == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"votes": []}, "votes: expected a list of 1 to"),
        ({"votes": "x"}, "votes: expected a list"),
        ({"votes": [{"token": "t", "choice": "left"}] * (VOTES_MAX + 1)}, "votes: expected"),
        ({"votes": [{"token": "a", "choice": "left"}, {"token": "b", "choice": "up"}]},
         "votes[2]: choice"),
        ({"votes": [{"token": "a", "choice": "left"}, 7]}, "votes[2]: expected a JSON object"),
        ({"votes": [{"token": "a", "choice": "left", "seconds": 1e999}]}, "votes[1]: seconds"),
        ({"votes": [{"token": "a", "choice": "left"}], "depth": 0}, "depth: expected"),
        ({"votes": [{"token": "a", "choice": "left"}], "depth": MAX_QUEUE_DEPTH + 1}, "depth"),
        ({"votes": [{"token": "a", "choice": "left"}], "depth": True}, "depth"),
        ({"votes": [{"token": "a", "choice": "left"}], "admin": 1}, "unknown field(s) ['admin']"),
    ],
)  # fmt: skip
def test_a_malformed_batch_stores_nothing_and_says_why(
    world: World, body: dict[str, Any], message: str
) -> None:
    _open(world)
    ann = world.annotators[0]
    c = signed_in_client(ann)
    token = _lease(c, 2)["queue"][0]["token"]
    for vote in body["votes"] if isinstance(body["votes"], list) else []:
        if isinstance(vote, dict) and vote.get("token") == "a":
            vote["token"] = token
    raw = json.dumps(body).replace("1e+999", "1e999")
    response = c.post(reverse("ratings:votes"), raw, content_type=JSON)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert Rating.objects.count() == 0


def test_lease_depth_is_bounded_and_the_form_body_keeps_the_default(world: World) -> None:
    _open(world)
    c = signed_in_client(world.annotators[0])
    for bad in ('{"depth": 0}', '{"depth": "8"}', '{"depth": 99}', '{"other": 1}', "[", "[]"):
        response = c.post(reverse("ratings:lease"), bad, content_type=JSON)
        assert response.status_code == 400, bad
    assert Assignment.objects.count() == 0
    assert len(c.post(reverse("ratings:lease")).json()["queue"]) == 2  # no JSON: the default
    open_tasks = Task.objects.count()
    assert len(_lease(c, MAX_QUEUE_DEPTH)["queue"]) == min(MAX_QUEUE_DEPTH, open_tasks)


def test_the_inbox_lists_every_open_task_kind_with_counts(world: World) -> None:
    ann = world.annotators[0]
    assert inbox(user=ann) == []
    _open(world)
    attribute_campaign_create(name="People", dataset_version=world.version, open_now=True)
    entries = {e.mode: e for e in inbox(user=ann)}
    assert set(entries) == {"pairwise", "attributes"}
    assert entries["attributes"].tasks == len(world.version.items.all())
    before = entries["pairwise"].tasks
    c = signed_in_client(ann)
    token = _lease(c, 2)["queue"][0]["token"]
    assert {e.mode: e.tasks for e in inbox(user=ann)}["pairwise"] == before  # held count too
    _votes(c, [{"token": token, "choice": "left"}])
    assert {e.mode: e.tasks for e in inbox(user=ann)}["pairwise"] == before - 1
    html = c.get(reverse("ratings:next")).content.decode()
    assert 'id="inbox"' in html and "Label people in photos" in html
    assert reverse("ratings:attr_rate") in html


def test_an_output_that_shows_no_subject_is_flagged_on_its_side(world: World) -> None:
    _open(world, items_per_pair=world.version.items.count())
    ann = world.annotators[0]
    ItemResult.objects.update(instance_count=1)
    ItemResult.objects.filter(run=world.runs[1]).update(gated=True, instance_count=0)
    state = _lease(signed_in_client(ann), 3)
    for task in state["queue"]:
        a = Assignment.objects.select_related("task").get(token=task["token"])
        empty_side = "right" if a.left_is_a == (a.task.run_a_id == world.runs[0].pk) else "left"
        assert task["empty"] == {"left": empty_side == "left", "right": empty_side == "right"}
