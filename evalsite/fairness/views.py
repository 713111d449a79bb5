"""Fairness pages: a run's Fairness tab (stored report) and per-group paired deltas of two runs.

Both only read: the report is computed by the `fairness.report` job (or the CLI); the compare
view resamples two stored runs' per-image rows, which writes nothing.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET

from evalsite.core.roles import researcher_required
from evalsite.evals.selectors import run_get
from evalsite.fairness.inputs import NoPersonAttributes
from evalsite.fairness.presenters import compare_context, report_context
from evalsite.fairness.selectors import fairness_paired, fairness_state


@researcher_required
@require_GET
def run_fairness_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_get(pk)
    state = fairness_state(run=run)
    context: dict[str, Any] = {"run": run, "state": state}
    if state.report is not None:
        context.update(report_context(state.report.data))
    return render(request, "fairness/run.html", context)


@researcher_required
@require_GET
def compare_fairness_view(request: HttpRequest) -> HttpResponse:
    try:
        a = run_get(int(request.GET.get("a", "")))
        b = run_get(int(request.GET.get("b", "")))
    except ValueError:
        return HttpResponseBadRequest("Give two run ids: /fairness/compare/?a=<id>&b=<id>")
    context: dict[str, Any] = {"a": a, "b": b}
    try:
        paired = fairness_paired(baseline=a, candidate=b)
    except NoPersonAttributes as exc:
        context["message"] = str(exc)
    except ValueError as exc:
        context["message"] = str(exc)
        return render(request, "fairness/compare.html", context, status=400)
    else:
        context.update(compare_context(paired))
    return render(request, "fairness/compare.html", context)
