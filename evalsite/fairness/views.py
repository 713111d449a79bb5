"""Fairness pages: a run's Fairness tab (stored report) and per-group paired deltas of two runs.

Both only read: the report is computed by the `fairness.report` job (or the CLI); the per-group
paired deltas by the `evals.compare` job, stored with the two runs' comparison.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from evalsite.core.roles import researcher_required
from evalsite.evals.selectors import (
    run_comparison_fairness,
    run_comparison_get,
    run_get,
    run_pair_get,
)
from evalsite.fairness.presenters import compare_context, report_context
from evalsite.fairness.selectors import fairness_state


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
    a, b = run_pair_get(
        request.GET.get("a", ""),
        request.GET.get("b", ""),
        usage="Give two run ids: /fairness/compare/?a=<id>&b=<id>",
    )
    context: dict[str, Any] = {"a": a, "b": b}
    if a.dataset_version_id != b.dataset_version_id:
        context["message"] = "the two runs are on different set versions; compare runs on one set"
        return render(request, "fairness/compare.html", context, status=400)
    # Read only: the per-group deltas are stored with the runs' comparison (evals.compare job).
    row = run_comparison_get(baseline=a, candidate=b)
    paired = run_comparison_fairness(row)
    context["comparison"] = row
    if paired is None:
        context["not_stored"] = True
    elif not paired.available:
        context["message"] = paired.message
    else:
        context.update(compare_context(paired))
    return render(request, "fairness/compare.html", context)
