"""Attribute annotation: the annotator's keyboard-first labelling page and its JSON calls, and the
researcher's campaign pages (create, results with agreement and QC, accept as a revision).

Blindness as on the rating page: annotators see the photo through the opaque per-assignment image
URL (ratings:image, slot "photo") and nothing else — no model, run, metric, mask or file name.
Leasing as on the rating page: GETs read what the annotator holds; `api/lease` (script),
`start/` (the form without script, redirecting back) and every submit lease, all POSTs.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from evalsite.core.answers import json_error
from evalsite.core.formfields import WholeNumberField
from evalsite.core.roles import annotator_required, researcher_required, signed_in
from evalsite.datasets.models import DatasetVersion
from ratings.forms import SubmitInvalid, parse_seconds
from ratings.models import DEFAULT_OVERLAP, Assignment, Campaign, CampaignStatus, Mode
from ratings.selectors import campaign_get
from ratings.services.assign import inbox
from ratings.services.attributes import (
    GENDER_KEYS,
    TONE_KEYS,
    AttributeCampaignError,
    attribute_campaign_accept,
    attribute_campaign_create,
    attribute_campaign_set_status,
    attribute_label_submit,
    attribute_queue,
    attribute_results,
)
from ratings.views.queue import (
    TaskPage,
    annotator_get,
    annotator_post,
    held_state,
    leased_state,
    read_body,
    see_other,
)

MONK = [(str(t), key) for key, t in sorted(TONE_KEYS.items(), key=lambda kv: int(kv[1]))]


def _tasks(_campaign: Campaign, assignments: list[Assignment]) -> list[dict[str, Any]]:
    """A photo to label: its token and its opaque image URL, nothing else."""
    return [
        {"token": a.token, "photo": reverse("ratings:image", args=[a.token, "photo"])}
        for a in assignments
    ]


#: The attribute-labelling page: its state holds the current and the preloaded photo only.
ATTRIBUTES = TaskPage(attributes=True, lease=attribute_queue, tasks=_tasks)


@annotator_required
@never_cache
@require_GET
def attribute_rate_view(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "ratings/attributes_rate.html",
        {
            "state": held_state(ATTRIBUTES, signed_in(request.user)),
            "inbox": inbox(user=signed_in(request.user)),
            "monk": MONK,
            "genders": [(key, g) for key, g in GENDER_KEYS.items()],
        },
    )


@annotator_get
def attribute_state_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(held_state(ATTRIBUTES, signed_in(request.user)))


@annotator_post
def attribute_lease_view(request: HttpRequest) -> JsonResponse:
    """Lease the annotator's next photos (up to the queue depth; none while they hold enough)."""
    return JsonResponse(leased_state(ATTRIBUTES, signed_in(request.user)))


@annotator_post
def attribute_start_view(request: HttpRequest) -> HttpResponse:
    """The "Start labelling" form without script: lease, then back to the page."""
    attribute_queue(user=signed_in(request.user))
    return see_other(reverse("ratings:attr_rate"))


@annotator_post
def attribute_submit_view(request: HttpRequest) -> JsonResponse:
    try:
        body = json.loads(read_body(request) or b"{}")
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        token = str(body.get("token", ""))
        seconds = parse_seconds(body.get("seconds", 0))  # finite, bounded, else 400
    except SubmitInvalid:
        raise  # a body too large: its message, from `json_errors`
    except (ValueError, TypeError, RecursionError) as exc:
        message = "too deeply nested" if isinstance(exc, RecursionError) else str(exc)
        return json_error(400, f"body: {message}", code="invalid")
    # Someone else's task, a closed campaign, a refused label: answered by `json_errors`.
    submitted = attribute_label_submit(
        user=signed_in(request.user),
        token=token,
        skin_tone=body.get("skin_tone"),
        perceived_gender=body.get("perceived_gender"),
        seconds=seconds,
    )
    return JsonResponse(
        leased_state(ATTRIBUTES, signed_in(request.user), prefer=submitted.rating.campaign)
    )


class AttributeCampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    dataset_version = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.select_related("dataset").order_by(
            "dataset__name", "-created_at"
        ),
        help_text="every item of this version becomes one task",
    )
    overlap = WholeNumberField(
        min_value=1, max_value=10, initial=DEFAULT_OVERLAP, help_text="annotators per item (k)"
    )
    instructions = forms.CharField(
        widget=forms.Textarea,
        required=False,
        initial=(
            "Pick the Monk swatch closest to the main person's skin (face or arms, in good "
            "light) and their perceived gender. If there is no person, press n. If you cannot "
            "tell, say so."
        ),
    )
    open_now = forms.BooleanField(required=False, initial=True)


@researcher_required
def attribute_campaign_new_view(request: HttpRequest) -> HttpResponse:
    form = AttributeCampaignForm(request.POST or None, initial=request.GET.dict() or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            campaign = attribute_campaign_create(
                name=data["name"],
                dataset_version=data["dataset_version"],
                overlap=data["overlap"],
                instructions=data["instructions"],
                open_now=data["open_now"],
                user=signed_in(request.user),
            )
        except AttributeCampaignError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Attribute campaign “{campaign.name}” created.")
            return redirect("ratings:attr_campaign", pk=campaign.pk)
    return render(request, "ratings/attributes_new.html", {"form": form})


@researcher_required
@require_GET
def attribute_campaign_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Aggregated labels, agreement and annotator QC, read from the stored ratings."""
    campaign = campaign_get(pk, mode=Mode.ATTRIBUTES)
    results = attribute_results(campaign=campaign)
    return render(
        request,
        "ratings/attributes_campaign.html",
        {
            "campaign": campaign,
            "r": results,
            "statuses": CampaignStatus.values,
            "revisions": campaign.dataset_version.attribute_revisions.order_by("-number")[:5],
        },
    )


@researcher_required
@require_POST
def attribute_campaign_status_view(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = campaign_get(pk, mode=Mode.ATTRIBUTES)
    try:
        attribute_campaign_set_status(campaign=campaign, status=request.POST.get("status", ""))
    except AttributeCampaignError as exc:
        messages.error(request, str(exc))
    return redirect("ratings:attr_campaign", pk=pk)


@researcher_required
@require_POST
def attribute_campaign_accept_view(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = campaign_get(pk, mode=Mode.ATTRIBUTES)
    try:
        revision = attribute_campaign_accept(campaign=campaign, user=signed_in(request.user))
    except AttributeCampaignError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Accepted as attribute revision {revision.number} (annotated) "
            f"of {campaign.dataset_version.spec}; fairness reports of its "
            "runs are being recomputed.",
        )
    return redirect("ratings:attr_campaign", pk=pk)
