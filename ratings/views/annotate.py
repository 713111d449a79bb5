"""The annotator's rating page, its JSON calls and its images — all under opaque tokens.

GETs only read: the page and `api/state` show the leases the annotator already holds. Leasing
is a POST: `api/lease` (the page's script, when it holds no task or none preloaded), `start/`
(the page's "Start rating" form without script; it redirects back to the page) and every submit.
Why so few calls: "submit + fetch next" is one POST that returns the next state. The page's
script does not wait for it: a key shows the next (held, preloaded) task at once and puts the
vote in an outbox that `api/votes` drains in batches, so the page holds a few tasks ahead
(`depth`) and an annotator never waits on the network between tasks.
Blindness: nothing here puts a run id, model name, file name or metric into HTML, JSON, URLs or
headers; images are the metadata-free web copies, read from disk and sent without a filename.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.auth.models import User
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from evalsite.core import files
from evalsite.core.answers import json_error
from evalsite.core.errors import NotFound, status_of
from evalsite.core.roles import AuthenticatedHttpRequest, annotator_required
from evalsite.evals.models import ItemResult
from evalsite.evals.services.artefacts import item_view, min_instance_area
from pipelines.metrics.io import read_gray8
from pipelines.postprocess.cutout import encode_png
from pipelines.postprocess.highlight import highlight_instance, jpeg_bytes
from pipelines.runners.images import load_image_rgb
from ratings.forms import SubmitInput, SubmitInvalid, parse_depth, parse_submit, parse_votes
from ratings.models import REASON_HOTKEYS, REASON_TAGS, Assignment, Campaign, Mode, is_pairwise
from ratings.services.assign import (
    QUEUE_DEPTH,
    AssignmentNotFound,
    RatingError,
    assignment_queue,
    inbox,
    rating_submit,
)
from ratings.views.queue import (
    TaskPage,
    annotator_get,
    annotator_post,
    held_state,
    json_errors,
    leased_state,
    read_body,
    see_other,
)

CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
IMAGE_CACHE = "private, max-age=3600"  # per-assignment URLs never change content
#: What a side that missed the selected subject shows: one transparent pixel (the page says
#: "no subject shown" over it, as over a whole-image output that lifted nothing).
EMPTY_CUTOUT = encode_png(np.zeros((1, 1, 4), np.uint8))
PAIR_SLOTS = ("photo", "thumb", "left", "right")
SINGLE_SLOTS = ("photo", "thumb", "single")
#: Instance lifts: "tap" is the photo with the selected subject outlined; left/right are the
#: lifted instances matched to it.
INSTANCE_SLOTS = ("photo", "thumb", "tap", "left", "right")


def _slots(mode: str) -> tuple[str, ...]:
    if mode == Mode.INSTANCES:
        return INSTANCE_SLOTS
    return PAIR_SLOTS if mode == Mode.PAIRWISE else SINGLE_SLOTS


def _task(assignment: Assignment, mode: str, empty: dict[tuple[int, int], bool]) -> dict[str, Any]:
    """One task for the page: image URLs under its token, and which panes show no subject (so
    the page can say so instead of showing an empty square; the empty cutout shows it anyway)."""
    task = assignment.task
    images = {s: reverse("ratings:image", args=[assignment.token, s]) for s in _slots(mode)}
    if mode == Mode.INSTANCES:  # a side that missed the selected subject shows none
        a, b = task.instance_a is None, task.instance_b is None
        left, right = (a, b) if assignment.left_is_a else (b, a)
        return {"token": assignment.token, "images": images,
                "empty": {"left": left, "right": right}}  # fmt: skip
    shown = {"single": task.run_a_id}
    if mode == Mode.PAIRWISE:
        left_run, right_run = (
            (task.run_a_id, task.run_b_id)
            if assignment.left_is_a
            else (task.run_b_id, task.run_a_id)
        )
        shown = {"left": left_run, "right": right_run}
    return {
        "token": assignment.token,
        "images": images,
        "empty": {
            slot: run is not None and empty.get((run, task.item_id), False)
            for slot, run in shown.items()
        },
    }


def _empty_outputs(assignments: list[Assignment]) -> dict[tuple[int, int], bool]:
    """(run, item) → the output shows no subject (hidden by the confidence gate, or no instance
    at all), for every output the assignments show, in one query."""
    if not assignments:
        return {}
    runs = {r for a in assignments for r in (a.task.run_a_id, a.task.run_b_id) if r}
    items = {a.task.item_id for a in assignments}
    rows = ItemResult.objects.filter(run_id__in=runs, item_id__in=items).values_list(
        "run_id", "item_id", "gated", "instance_count"
    )
    return {(run, item): gated or count == 0 for run, item, gated, count in rows}


def _tasks(campaign: Campaign, assignments: list[Assignment]) -> list[dict[str, Any]]:
    empty = _empty_outputs(assignments)
    return [_task(a, campaign.mode, empty) for a in assignments]


#: The rating page: its state also carries the campaign's mode and the whole queue (the
#: script holds `depth` tasks ahead).
RATING = TaskPage(
    attributes=False,
    lease=assignment_queue,
    tasks=_tasks,
    extra=lambda campaign, tasks: {"mode": campaign.mode if campaign else None, "queue": tasks},
)


@annotator_get
def next_task(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The rating page with the held task; with none held, its "Start rating" form (the script
    leases at once); with no work anywhere, the "nothing waiting" page."""
    state = held_state(RATING, request.user)
    entries = inbox(user=request.user)
    if state["mode"] is None:
        return render(request, "ratings/next.html", {"inbox": entries})
    reasons = [(key, REASON_HOTKEYS[key], label) for key, label in REASON_TAGS]
    return render(
        request,
        "ratings/rate.html",
        {
            "state": state,
            "reasons": reasons,
            "pairwise": is_pairwise(state["mode"]),
            "instances": state["mode"] == Mode.INSTANCES,
            "inbox": entries,
        },
    )


@annotator_get
def state_view(request: AuthenticatedHttpRequest) -> JsonResponse:
    return JsonResponse(held_state(RATING, request.user))


@annotator_post
def lease_view(request: AuthenticatedHttpRequest) -> JsonResponse:
    """Lease the annotator's next tasks (up to the queue depth; none while they hold enough).

    A JSON body may ask for a depth, `{"depth": n}` (the page's script holds a few tasks ahead);
    any other body (the no-script form's) asks for the default."""
    depth = QUEUE_DEPTH
    if (request.content_type or "").lower() == "application/json":
        try:
            body = read_body(request)
            data = json.loads(body.decode("utf-8")) if body.strip() else {}
            if not isinstance(data, dict) or set(data) - {"depth"}:
                raise SubmitInvalid('send an empty body or {"depth": n}')
            depth = parse_depth(data.get("depth"))
        except (ValueError, RecursionError) as exc:
            message = str(exc) if isinstance(exc, SubmitInvalid) else "the body is not valid JSON"
            return json_error(400, message, code="invalid")
    return JsonResponse(leased_state(RATING, request.user, depth=depth))


@annotator_post
def start_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The "Start rating" form without script: lease, then back to the page (POST/redirect/GET)."""
    assignment_queue(user=request.user)
    return see_other(reverse("ratings:next"))


@annotator_post
def submit_view(request: AuthenticatedHttpRequest) -> JsonResponse:
    # A malformed body, someone else's task, a closed campaign: answered by `json_errors`.
    body = parse_submit(read_body(request), request.content_type or "")
    submitted = rating_submit(
        user=request.user, token=body.token, choice=body.choice, score=body.score,
        reasons=body.reasons, seconds=body.seconds,
    )  # fmt: skip
    return JsonResponse(leased_state(RATING, request.user, prefer=submitted.rating.campaign))


@annotator_post
def votes_view(request: AuthenticatedHttpRequest) -> JsonResponse:
    """Store a batch of votes from the page's outbox, in order, and answer the next state.

    Each vote is stored on its own (a repeat of a stored one is answered as saved: the outbox
    re-sends what a lost reply left unconfirmed). A vote that can never be stored (not this
    annotator's task, a closed campaign) is answered with its reason so the page drops it and
    says so; anything else fails the request, and the page retries the whole batch later.
    """
    votes, depth = parse_votes(read_body(request), request.content_type or "")
    results: list[dict[str, Any]] = []
    prefer: Campaign | None = None
    for vote in votes:
        outcome = _store_vote(request.user, vote)
        results.append(outcome[0])
        prefer = outcome[1] or prefer
    return JsonResponse(
        {
            "results": results,
            "state": leased_state(RATING, request.user, prefer=prefer, depth=depth),
        }
    )


def _store_vote(user: User, vote: SubmitInput) -> tuple[dict[str, Any], Campaign | None]:
    try:
        submitted = rating_submit(
            user=user, token=vote.token, choice=vote.choice, score=vote.score,
            reasons=vote.reasons, seconds=vote.seconds,
        )  # fmt: skip
    except (AssignmentNotFound, RatingError) as exc:  # this vote can never be stored
        status = (status_of(exc) or (400, ""))[0]  # both are in STATUS_OF: 404, 409 or 400
        return {"token": vote.token, "status": status, "error": str(exc)}, None
    return {"token": vote.token, "status": 201 if submitted.created else 200}, (
        submitted.rating.campaign
    )


def _image(assignment: Assignment, slot: str) -> tuple[bytes, str] | None:
    """(bytes, content type) of a slot's picture; None for a side that missed the subject.

    Cutouts are rendered from the photo and the run's alpha PNG (evals.services.artefacts): a GET
    writes nothing, and the browser keeps the picture under IMAGE_CACHE."""
    task = assignment.task
    if slot in ("photo", "thumb"):
        name = str(task.item.web.name if slot == "photo" else task.item.thumb.name)
        try:  # read through the store: the annotator sees this view's URL, never a key
            return files.read_bytes(name), CONTENT_TYPES.get(Path(name).suffix.lower(), "image/png")
        except OSError as exc:
            raise NotFound("image not available") from exc
    side_a = slot == "single" or (slot == "left") == assignment.left_is_a
    run_id = task.run_a_id if side_a else task.run_b_id
    artefacts, run_postprocess = (
        ItemResult.objects.filter(run_id=run_id, item_id=task.item_id)
        .values_list("artefacts", "run__postprocess")
        .first()
    ) or ({}, {})
    role = "web_cutout"
    if assignment.campaign.mode == Mode.INSTANCES:
        n = task.instance_a if side_a else task.instance_b
        if n is None:
            return None  # the run missed the selected subject: an empty cutout
        role = f"instance_web-{n}"
    try:
        view = item_view(artefacts, task.item.image.name, role,
                         min_instance_area=min_instance_area(run_postprocess))  # fmt: skip
        return view.render()
    except (NotFound, OSError, ValueError) as exc:
        raise NotFound("image not available") from exc


def _tap_image(assignment: Assignment) -> bytes:
    """The web photo with the task's ground-truth instance outlined, drawn on request (a few
    ms at web size; GET writes nothing, and the browser keeps it under IMAGE_CACHE)."""
    task = assignment.task
    instances = task.item.instances or []
    k = task.instance or 0
    if not 1 <= k <= len(instances):
        raise NotFound("image not available")
    try:
        photo = load_image_rgb(io.BytesIO(files.read_bytes(str(task.item.web.name))))
        mask = read_gray8(io.BytesIO(files.read_bytes(str(instances[k - 1]["mask"]))))
    except (OSError, ValueError) as exc:
        raise NotFound("image not available") from exc
    return jpeg_bytes(highlight_instance(photo, mask))


@annotator_required
@json_errors
@require_GET
def image_view(request: AuthenticatedHttpRequest, token: str, slot: str) -> HttpResponse:
    assignment = (
        Assignment.objects.select_related("task__item", "campaign")
        .filter(token=token, annotator_id=request.user.pk)
        .first()
    )
    if assignment is None:
        raise NotFound("no such image")
    if slot not in _slots(assignment.campaign.mode):
        raise NotFound("no such image")
    if slot == "tap":
        response = HttpResponse(_tap_image(assignment), content_type="image/jpeg")
        response["Cache-Control"] = IMAGE_CACHE
        return response
    image = _image(assignment, slot)
    # as a whole-image output that lifted nothing shows: transparent pixels
    data, content_type = image if image is not None else (EMPTY_CUTOUT, "image/png")
    # HttpResponse, not FileResponse: FileResponse would name the stored file in its headers.
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = IMAGE_CACHE
    return response
