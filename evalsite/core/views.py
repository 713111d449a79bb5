from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from evalsite.core import roles, selectors


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    body, status = selectors.health()
    return JsonResponse(body, status=status)


def home(
    request: HttpRequest, research_home: Callable[[HttpRequest], HttpResponse]
) -> HttpResponse:
    """The site's root. `research_home` is the page researchers land on (the leaderboard, newest
    report's verdict on top): the project's URL conf passes it, as core sits below that app."""
    if not request.user.is_authenticated:
        return redirect("login")
    if roles.can_rate(request.user) and not roles.can_research(request.user):
        return redirect("ratings:next")  # an annotator's home is their next task
    if roles.can_research(request.user):
        return research_home(request)
    return render(request, "core/home.html", {"workers": selectors.workers_by_queue()})


@roles.admin_required
def system(request: HttpRequest) -> HttpResponse:
    body, status = selectors.health()
    workers = selectors.live_workers()
    return render(
        request,
        "core/system.html",
        {
            "health": body,
            "http_status": status,
            "workers": workers,
            "active_tasks": selectors.inspect_active(),
            **selectors.job_overview(),
        },
    )
