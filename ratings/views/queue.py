"""What the annotator's two task pages share: the rating page (`ratings.views.annotate`) and the
attribute-labelling page (`ratings.views.attributes`).

Each page shows the tasks the annotator holds under leases, through one state document: the
current task, the one preloaded behind it, progress, the campaign's instructions and whether a
lease POST would find more work. GETs read what is held (`held_state`); POSTs lease
(`leased_state`). A `TaskPage` says what differs: which campaigns the page serves, how it
leases, and what one task looks like to its script (only opaque per-assignment tokens and URLs:
blindness is each page's `tasks`).

Failures are answered by `json_errors` in the one JSON error shape, never a debug page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any, Protocol

from django.contrib.auth.models import User
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from evalsite.core.answers import json_error
from evalsite.core.errors import SERVER_ERROR, status_of
from evalsite.core.roles import annotator_required
from ratings.forms import SubmitInvalid
from ratings.models import Assignment, Campaign
from ratings.services.assign import QUEUE_DEPTH, Queue, held_queue

logger = logging.getLogger(__name__)


class Lease(Protocol):
    """A page's claim (a write): the annotator's queue topped up to `depth`."""

    def __call__(self, *, user: User, prefer: Campaign | None, depth: int) -> Queue: ...


@dataclass(frozen=True)
class TaskPage:
    """One annotator task page: what its state document holds beyond the shared keys."""

    #: The campaigns it serves: attribute labelling (True) or rating (False), as `held_queue`.
    attributes: bool
    lease: Lease
    #: The script's view of each held task, in queue order (current first).
    tasks: Callable[[Campaign, list[Assignment]], list[dict[str, Any]]]
    #: Keys only this page's state has, from its campaign (None: no work) and tasks.
    extra: Callable[[Campaign | None, list[dict[str, Any]]], dict[str, Any]] = lambda _c, _t: {}


def state(
    page: TaskPage,
    campaign: Campaign | None,
    assignments: Sequence[Assignment],
    done: int,
    total: int,
    available: bool,
) -> dict[str, Any]:
    """The page's state: current task, the preloaded one, progress, instructions, and whether a
    lease POST would find more work (`available`)."""
    if campaign is None:
        return {"current": None, "upcoming": None, "progress": None, "instructions": "",
                "available": False, **page.extra(None, [])}  # fmt: skip
    tasks = page.tasks(campaign, list(assignments))
    return {
        "current": tasks[0] if tasks else None,
        "upcoming": tasks[1] if len(tasks) > 1 else None,
        "progress": {"done": done, "total": total},
        "instructions": campaign.instructions,
        "available": available,
        **page.extra(campaign, tasks),
    }


def leased_state(
    page: TaskPage, user: User, prefer: Campaign | None = None, depth: int = QUEUE_DEPTH
) -> dict[str, Any]:
    """Lease up to the queue depth (writes: POST handlers only) and answer the state."""
    q = page.lease(user=user, prefer=prefer, depth=depth)
    available = q.total > q.done + len(q.assignments)
    return state(page, q.campaign, q.assignments, q.done, q.total, available)


def held_state(page: TaskPage, user: User) -> dict[str, Any]:
    """The state of what the annotator holds now, leasing nothing (GET handlers)."""
    h = held_queue(user=user, attributes=page.attributes)
    return state(page, h.campaign, h.assignments, h.done, h.total, h.available)


def see_other(url: str) -> HttpResponseRedirect:
    """303: the browser follows a form POST with a GET of `url` (a reload never re-posts)."""
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def read_body(request: HttpRequest) -> bytes:
    """The raw body, or SubmitInvalid when it is larger than Django accepts (no 500 either)."""
    try:
        return request.body
    except RequestDataTooBig:
        raise SubmitInvalid("the body is too large for a submit") from None


View = Callable[..., HttpResponse]


def json_errors(view: View) -> View:
    """Annotators never see a debug or error page: any failure is a short JSON answer in the one
    error shape (`evalsite.core.errors`). A domain error (no such task, a closed campaign, a
    refused or malformed submit) answers its status from `STATUS_OF` with its message; anything
    else a 500 with a fixed message, the details (and a traceback) in the server log only —
    the body says nothing about models, files or settings, whatever DEBUG is.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Exception as exc:
            mapped = status_of(exc)
            if mapped is not None:
                return json_error(mapped[0], str(exc), code=mapped[1])
            logger.exception("annotator view %s failed for user %s", view.__name__, request.user.pk)
            return json_error(500, SERVER_ERROR)

    return wrapped


def annotator_get(view: View) -> Callable[..., HttpResponseBase]:
    """An annotator's GET (it reads only), answered fresh every time, failures as JSON."""
    return annotator_required(json_errors(never_cache(require_GET(view))))


def annotator_post(view: View) -> Callable[..., HttpResponseBase]:
    """An annotator's POST (it may lease or store), never cached, failures as JSON."""
    return annotator_required(json_errors(never_cache(require_POST(view))))
