"""Leasing is a POST: the rating and labelling pages' GETs read what the annotator holds, the
script's `api/lease` and the "Start" forms (no script; POST/redirect/GET) lease, once per depth."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from ratings.models import Assignment, Campaign
from ratings.services.assign import QUEUE_DEPTH, assignment_queue, rating_submit
from ratings.services.attributes import attribute_campaign_create
from tests.evals.factories import signed_in_client
from tests.ratings.blind import forbidden, leaks
from tests.ratings.builders import World, open_campaign

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def _open(world: World, **kw: Any) -> Campaign:
    return open_campaign(world, **{"name": "Leases", **kw})


def _csrf(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def test_the_pages_gets_lease_nothing_and_say_work_is_waiting(world: World) -> None:
    _open(world)
    attribute_campaign_create(name="Labels", dataset_version=world.version, open_now=True)
    c = signed_in_client(world.annotators[0])
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
    c = signed_in_client(world.annotators[0])
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


@pytest.mark.parametrize(
    ("page", "start", "lease", "shown", "form"),
    [
        ("ratings:next", "ratings:start", "ratings:lease", "/rate/i/{}/left", 'id="start"'),
        ("ratings:attr_rate", "ratings:attr_start", "ratings:attr_lease",
         'src="/rate/i/{}/photo"', 'id="attr-start"'),
    ],
    ids=["rating", "labelling"],
)  # fmt: skip
def test_a_start_form_needs_its_csrf_token_leases_once_and_redirects_back_to_its_page(
    world: World, page: str, start: str, lease: str, shown: str, form: str
) -> None:
    # Given work on both pages (a rating and a labelling campaign)
    _open(world)
    attribute_campaign_create(name="Labels", dataset_version=world.version, open_now=True)
    c = signed_in_client(world.annotators[0], enforce_csrf_checks=True)
    html = c.get(reverse(page)).content.decode()
    assert c.post(reverse(start)).status_code == 403
    assert c.post(reverse(lease)).status_code == 403
    assert not Assignment.objects.exists()
    # When the form is sent, then this page's tasks are leased and the page shows the first
    posted = c.post(reverse(start), {"csrfmiddlewaretoken": _csrf(html)})
    assert posted.status_code == 303 and posted["Location"] == reverse(page)
    held = list(Assignment.objects.all())
    assert len(held) == QUEUE_DEPTH
    shows = c.get(posted["Location"]).content.decode()
    assert shown.format(held[0].token) in shows and form not in shows
    # and a second press, or the script's lease, leases nothing more
    assert c.post(reverse(start), {"csrfmiddlewaretoken": _csrf(shows)}).status_code == 303
    state = c.post(reverse(lease), HTTP_X_CSRFTOKEN=_csrf(shows)).json()
    assert state["current"]["token"] == held[0].token
    assert Assignment.objects.count() == QUEUE_DEPTH


def test_without_work_the_lease_says_so_and_the_start_form_lands_on_nothing_waiting(
    world: World,
) -> None:
    c = signed_in_client(world.annotators[0])
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
    c = signed_in_client(ann)
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
    c = signed_in_client(ann)
    assert c.get(reverse("ratings:state")).json()["current"]["token"] == held[0].token
    assert c.post(reverse("ratings:lease")).json()["current"]["token"] == held[0].token
    assert not Assignment.objects.filter(campaign=older).exists()
    for a in held:  # done there: the next lease moves on to the older campaign's work
        rating_submit(user=ann, token=a.token, choice="left")
    moved = c.post(reverse("ratings:lease")).json()
    assert moved["current"] is not None
    assert Assignment.objects.filter(campaign=older, annotator=ann).count() == QUEUE_DEPTH
