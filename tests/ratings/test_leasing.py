"""Leasing is a POST: the rating and labelling pages' GETs read what the annotator holds, the
script's `api/lease` and the "Start" forms (no script; POST/redirect/GET) lease, once per depth."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ratings.models import Assignment, Campaign
from ratings.services.assign import QUEUE_DEPTH, assignment_queue, rating_submit
from ratings.services.attributes import attribute_campaign_create
from ratings.services.campaigns import campaign_create
from tests.ratings.blind import forbidden, leaks
from tests.ratings.builders import World

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def _client(user: Any, **kw: Any) -> Client:
    c = Client(**kw)
    c.force_login(user)
    return c


def _open(world: World, **kw: Any) -> Campaign:
    args = {
        "name": "Leases",
        "dataset_version": world.version,
        "runs": world.runs,
        "items_per_pair": 4,
        "gold_ratio": 0.0,
        "open_now": True,
        **kw,
    }
    return campaign_create(**args)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def test_the_pages_gets_lease_nothing_and_say_work_is_waiting(world: World) -> None:
    _open(world)
    attribute_campaign_create(name="Labels", dataset_version=world.version, open_now=True)
    c = _client(world.annotators[0])
    page = c.get(reverse("ratings:next")).content.decode()
    assert 'action="/rate/start/"' in page and "Start rating" in page
    assert "0 of 4" in page  # progress is read, not leased
    labels = c.get(reverse("ratings:attr_rate")).content.decode()
    assert 'action="/rate/attributes/start/"' in labels and "Start labelling" in labels
    for name in ("ratings:state", "ratings:attr_state"):
        state = c.get(reverse(name)).json()
        assert state["current"] is None and state["available"] is True, (name, state)
        assert state["progress"]["done"] == 0
    assert not Assignment.objects.exists()


def test_a_lease_post_leases_up_to_the_depth_once_and_the_get_shows_it(world: World) -> None:
    _open(world)
    c = _client(world.annotators[0])
    first = c.post(reverse("ratings:lease"))
    assert first.status_code == 200
    assert Assignment.objects.count() == QUEUE_DEPTH
    again = c.post(reverse("ratings:lease")).json()
    assert again == first.json()  # holding the depth already: nothing more is leased
    assert Assignment.objects.count() == QUEUE_DEPTH
    assert c.get(reverse("ratings:state")).json() == again
    page = c.get(reverse("ratings:next")).content.decode()
    assert 'id="start"' not in page and again["current"]["images"]["left"] in page
    assert leaks(page, forbidden(world)) == []
    assert c.get(reverse("ratings:lease")).status_code == 405  # never on a GET


def test_the_start_form_needs_its_csrf_token_and_redirects_back_to_the_page(
    world: World,
) -> None:
    _open(world)
    c = _client(world.annotators[0], enforce_csrf_checks=True)
    html = c.get(reverse("ratings:next")).content.decode()
    assert c.post(reverse("ratings:start")).status_code == 403
    assert c.post(reverse("ratings:lease")).status_code == 403
    assert not Assignment.objects.exists()
    posted = c.post(reverse("ratings:start"), {"csrfmiddlewaretoken": _csrf(html)})
    assert posted.status_code == 303 and posted["Location"] == reverse("ratings:next")
    held = list(Assignment.objects.all())
    assert len(held) == QUEUE_DEPTH
    page = c.get(posted["Location"]).content.decode()
    assert f"/rate/i/{held[0].token}/left" in page and 'id="start"' not in page
    assert c.post(reverse("ratings:start"), {"csrfmiddlewaretoken": _csrf(page)}).status_code == 303
    assert Assignment.objects.count() == QUEUE_DEPTH  # a second press leases nothing more


def test_the_labelling_start_form_leases_by_post_and_redirects_back(world: World) -> None:
    attribute_campaign_create(name="Labels", dataset_version=world.version, open_now=True)
    c = _client(world.annotators[0], enforce_csrf_checks=True)
    html = c.get(reverse("ratings:attr_rate")).content.decode()
    assert not Assignment.objects.exists()
    posted = c.post(reverse("ratings:attr_start"), {"csrfmiddlewaretoken": _csrf(html)})
    assert posted.status_code == 303 and posted["Location"] == reverse("ratings:attr_rate")
    held = list(Assignment.objects.all())
    assert len(held) == QUEUE_DEPTH
    page = c.get(posted["Location"]).content.decode()
    assert f'src="/rate/i/{held[0].token}/photo"' in page and 'id="attr-start"' not in page
    state = c.post(reverse("ratings:attr_lease"), HTTP_X_CSRFTOKEN=_csrf(page)).json()
    assert state["current"]["token"] == held[0].token
    assert Assignment.objects.count() == QUEUE_DEPTH


def test_without_work_the_lease_says_so_and_the_start_form_lands_on_nothing_waiting(
    world: World,
) -> None:
    c = _client(world.annotators[0])
    state = c.post(reverse("ratings:lease")).json()
    assert state["current"] is None and state["available"] is False
    posted = c.post(reverse("ratings:start"))
    assert posted.status_code == 303
    assert "No rating tasks are waiting" in c.get(posted["Location"]).content.decode()
    assert c.post(reverse("ratings:attr_lease")).json()["available"] is False


def test_holding_one_task_the_get_shows_it_and_a_lease_adds_the_preloaded_one(
    world: World,
) -> None:
    _open(world)
    ann = world.annotators[0]
    first, second = assignment_queue(user=ann).assignments
    Assignment.objects.filter(pk=second.pk).update(leased_until=timezone.now() - timedelta(1))
    c = _client(ann)
    state = c.get(reverse("ratings:state")).json()
    assert state["current"]["token"] == first.token and state["upcoming"] is None
    assert state["available"] is True  # the page's script leases the preloaded task
    topped = c.post(reverse("ratings:lease")).json()
    assert topped["current"]["token"] == first.token
    assert topped["upcoming"]["token"] not in (first.token, second.token)


def test_leases_held_in_a_newer_campaign_are_shown_and_kept_before_older_work(
    world: World,
) -> None:
    older = _open(world, name="older")
    newer = _open(world, name="newer")
    ann = world.annotators[0]
    held = assignment_queue(user=ann, campaign=newer).assignments
    c = _client(ann)
    assert c.get(reverse("ratings:state")).json()["current"]["token"] == held[0].token
    assert c.post(reverse("ratings:lease")).json()["current"]["token"] == held[0].token
    assert not Assignment.objects.filter(campaign=older).exists()
    for a in held:  # done there: the next lease moves on to the older campaign's work
        rating_submit(user=ann, token=a.token, choice="left")
    moved = c.post(reverse("ratings:lease")).json()
    assert moved["current"] is not None
    assert Assignment.objects.filter(campaign=older, annotator=ann).count() == QUEUE_DEPTH
