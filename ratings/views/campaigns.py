"""Campaign pages for researchers and managers: list, create, results, open/close, export."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evalsite.core.errors import NotFound
from evalsite.core.roles import AuthenticatedHttpRequest, researcher_required
from pipelines import csvsafe
from ratings import selectors
from ratings.forms import CampaignForm
from ratings.models import (
    DEFAULT_ALPHA,
    DEFAULT_GOLD_SHARE,
    Campaign,
    CampaignStatus,
    Stopping,
)
from ratings.services.campaigns import (
    CampaignError,
    campaign_create,
    campaign_set_exclusion,
    campaign_set_status,
)
from ratings.services.reports import campaign_snapshot_payload, campaign_snapshot_refresh

CSV_COLUMNS = (
    "rating",
    "task",
    "item",
    "stratum",
    "run_a",
    "run_b",
    "left_run",
    "shown_choice",
    "outcome",
    "winner",
    "score",
    "reasons",
    "seconds",
    "late",
    "annotator",
    "simulated",
    "gold_winner",
    "created_at",
)


@researcher_required
def campaign_list_view(request: HttpRequest) -> HttpResponse:
    return render(request, "ratings/campaigns.html", {"campaigns": selectors.campaign_rows()})


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


@researcher_required
def campaign_create_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            campaign = campaign_create(
                name=data["name"],
                dataset_version=data["dataset_version"],
                runs=list(data["runs"]),
                mode=data["mode"],
                overlap=data["overlap"],
                items_per_pair=data["items_per_pair"],
                disagreement_share=data["disagreement_share"],
                gold_ratio=_or(data["gold_ratio"], DEFAULT_GOLD_SHARE),
                stopping=data["stopping"] or Stopping.FIXED,
                vote_budget=data["vote_budget"],
                alpha=_or(data["alpha"], DEFAULT_ALPHA),
                margin=data["margin"],
                instructions=data["instructions"],
                open_now=data["open_now"],
                user=request.user,
            )
        except CampaignError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Campaign “{campaign.name}” created.")
            return redirect("ratings:campaign", pk=campaign.pk)
    status = 400 if request.method == "POST" else 200  # the form again, with the reasons
    return render(request, "ratings/campaign_new.html", {"form": form}, status=status)


@researcher_required
def campaign_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The stored report with its age; nothing is computed here (see ratings.services.reports)."""
    campaign = selectors.campaign_get(pk)
    snapshot = selectors.campaign_snapshot_get(campaign=campaign)
    report = snapshot.payload if snapshot is not None and snapshot.computed_at else None
    return render(
        request, "ratings/campaign.html", {"campaign": campaign, "snap": snapshot, "r": report}
    )


@researcher_required
@require_POST
def campaign_recompute_view(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Recompute now": the report from every rating so far, in this request."""
    campaign = selectors.campaign_get(pk)
    snapshot = campaign_snapshot_refresh(campaign=campaign)
    messages.success(
        request,
        f"Report recomputed from {snapshot.ratings_count} ratings in {snapshot.seconds:.1f} s.",
    )
    return redirect("ratings:campaign", pk=pk)


@researcher_required
@require_POST
def campaign_status_view(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = selectors.campaign_get(pk)
    action = request.POST.get("action", "")
    if action in {CampaignStatus.OPEN, CampaignStatus.CLOSED, CampaignStatus.DRAFT}:
        campaign_set_status(campaign=campaign, status=action)
        messages.success(request, f"Campaign is now {action}.")
    elif action in {"exclude", "include"}:
        campaign_set_exclusion(campaign=campaign, exclude_flagged=action == "exclude")
        messages.success(
            request,
            "Flagged annotators' ratings are now "
            + ("excluded." if action == "exclude" else "counted."),
        )
    else:
        messages.error(request, f"Unknown action {action!r}.")
    return redirect("ratings:campaign", pk=pk)


def _csv_rows(campaign: Campaign) -> list[dict[str, Any]]:
    runs = selectors.campaign_runs(campaign)
    label = {r.pk: selectors.run_label(r) for r in runs}
    out = []
    for r in selectors.rating_rows(campaign):
        a, b = r["task__run_a_id"], r["task__run_b_id"]
        left = a if r["assignment__left_is_a"] else b
        winner = {"a": a, "b": b}.get(r["outcome"])
        out.append(
            {
                "rating": r["pk"],
                "task": r["task_id"],
                "item": r["task__item__stem"],
                "stratum": r["task__stratum"],
                "run_a": label.get(a, ""),
                "run_b": label.get(b, ""),
                "left_run": label.get(left, ""),
                "shown_choice": r["shown_choice"],
                "outcome": r["outcome"],
                "winner": label.get(winner, "") if winner else "",
                "score": r["score"] if r["score"] is not None else "",
                "reasons": ";".join(r["reasons"] or []),
                "seconds": round(r["seconds"], 3),
                "late": r["late"],
                "annotator": r["annotator__username"],
                "simulated": r["simulated"],
                "gold_winner": r["task__gold_winner"],
                "created_at": r["created_at"].isoformat(),
            }
        )
    return out


@researcher_required
def campaign_export_view(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    campaign = selectors.campaign_get(pk)
    if fmt == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="campaign-{pk}-ratings.csv"'
        writer = csvsafe.DictWriter(response, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(_csv_rows(campaign))
        return response
    if fmt == "json":
        snapshot = selectors.campaign_snapshot_get(campaign=campaign)
        body = {
            "report": campaign_snapshot_payload(snapshot=snapshot)
            if snapshot is not None and snapshot.computed_at
            else None,
            "ratings": _csv_rows(campaign),
        }
        response = JsonResponse(body, json_dumps_params={"indent": 1, "default": str})
        response["Content-Disposition"] = f'attachment; filename="campaign-{pk}.json"'
        return response
    raise NotFound("export as .csv or .json")
