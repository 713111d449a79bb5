"""Fairness pages: a run's Fairness tab (stored report) and per-group paired deltas of two runs.

Both only read: the report is computed by the `fairness.report` job (or the CLI); the per-group
paired deltas by the `evals.compare` job, stored with the two runs' comparison.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET

from evalsite.core.roles import researcher_required
from evalsite.evals.selectors import run_comparison_get, run_get
from evalsite.fairness.presenters import compare_context, report_context
from evalsite.fairness.selectors import fairness_state
from pipelines.parse import InvalidNumber, parse_id


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
        ids = [parse_id(request.GET.get(key, ""), name=key) for key in ("a", "b")]
    except InvalidNumber as exc:
        return HttpResponseBadRequest(
            f"Give two run ids: /fairness/compare/?a=<id>&b=<id> ({exc})",
            content_type="text/plain; charset=utf-8",
        )
    a, b = run_get(ids[0]), run_get(ids[1])
    context: dict[str, Any] = {"a": a, "b": b}
    if a.dataset_version_id != b.dataset_version_id:
        context["message"] = "the two runs are on different set versions; compare runs on one set"
        return render(request, "fairness/compare.html", context, status=400)
    # Read only: the per-group deltas are stored with the runs' comparison (evals.compare job).
    row = run_comparison_get(baseline=a, candidate=b)
    paired = (row.payload or {}).get("fairness") if row is not None else None
    context["comparison"] = row
    if paired is None:
        context["not_stored"] = True
    elif "message" in paired:
        context["message"] = paired["message"]
    else:
        context.update(compare_context(paired))
    return render(request, "fairness/compare.html", context)
