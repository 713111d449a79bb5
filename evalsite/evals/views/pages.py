"""Run pages: list, start, the run page with live progress, cancel and re-run."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch
from django.views.decorators.http import require_GET, require_POST

from evalsite.core.roles import researcher_required, signed_in
from evalsite.evals.errors import EvalError
from evalsite.evals.forms import RunStartForm
from evalsite.evals.latency import latency_tables
from evalsite.evals.models import SORTABLE_METRICS, EvalRun, ItemResult, ResultStatus, RunStatus
from evalsite.evals.selectors import (
    comparable_runs,
    primary_run,
    run_biased_evidence,
    run_get,
    run_list,
    run_progress,
    run_reproductions,
)
from evalsite.evals.services.reproduce import eval_run_reproduce
from evalsite.evals.services.runs import eval_run_cancel, eval_run_rerun, eval_run_start
from pipelines.metrics.registry import run_metrics, slice_metrics


@researcher_required
@require_GET
def run_list_view(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    runs = run_list(status=status if status in RunStatus.values else "")
    return render(
        request,
        "evals/list.html",
        {"runs": runs, "status": status, "statuses": RunStatus.values},
    )


@researcher_required
def run_start_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = RunStartForm(request.POST)
        if form.is_valid():
            try:
                run = eval_run_start(
                    model_version=form.cleaned_data["model_version"],
                    dataset_version=form.cleaned_data["dataset_version"],
                    runtime=form.cleaned_data["runtime"],
                    postprocess=form.postprocess(),
                    parity=form.cleaned_data["parity"],
                    user=signed_in(request.user),
                )
            except EvalError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Run #{run.pk} started.")
                return redirect(run.get_absolute_url())
    else:
        form = RunStartForm(initial=request.GET.dict())
    return render(request, "evals/start.html", {"form": form})


def _latencies(run_id: int) -> list[float]:
    rows = ItemResult.objects.filter(run_id=run_id, status=ResultStatus.OK).values_list(
        "latency", flat=True
    )
    return [float(r["total"]) for r in rows if "total" in r]  # imported: maybe not measured


def _model_url(run: EvalRun) -> str:
    """The registry's version page, or "" while the registry has no such page."""
    try:
        return run.model_version.get_absolute_url()
    except NoReverseMatch:
        return ""


@researcher_required
@require_GET
def run_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_get(pk)  # read-only: finishing a run is the worker's or the reaper's job
    summary: dict[str, Any] = run.summary or {}
    primary = primary_run(model_version=run.model_version, dataset_version=run.dataset_version)
    charts = {
        "pr": {
            "precision": run.curves.get("precision", []),
            "recall": run.curves.get("recall", []),
        },
        "fmeasure": run.curves.get("fmeasure", []),
        "latency": _latencies(run.pk) if run.status == RunStatus.DONE else [],
    }
    gated, ungated = summary.get("metrics") or {}, summary.get("ungated_metrics") or {}
    metric_rows = [(m, gated.get(m.name), ungated.get(m.name)) for m in run_metrics()]
    return render(
        request,
        "evals/detail.html",
        {
            "run": run,
            "model_url": _model_url(run),
            "summary": summary,
            "metric_rows": metric_rows,
            "slice_metrics": slice_metrics(),
            "progress": run_progress(run),
            "charts": charts,
            "latency": latency_tables(summary) if run.has_latency else [],
            "is_primary": primary is not None and primary.pk == run.pk,
            "comparable": comparable_runs(run)[:50],
            "parity_runs": run.parity_runs.select_related("model_version__family"),
            "reproductions": run_reproductions(run),
            "sort_keys": SORTABLE_METRICS,
            "biased_evidence": run_biased_evidence(run),
        },
    )


@researcher_required
@require_GET
def run_progress_view(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(run_progress(run_get(pk)))


@researcher_required
@require_POST
def run_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_get(pk)
    if eval_run_cancel(run=run, reason=f"cancelled by {request.user.get_username()}"):
        messages.success(request, f"Run #{run.pk} cancelled.")
    else:
        messages.error(request, f"Run #{run.pk} is already {run.status}.")
    return redirect(run.get_absolute_url())


@researcher_required
@require_POST
def run_rerun_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_get(pk)
    try:
        new = eval_run_rerun(run=run, user=signed_in(request.user))
    except EvalError as exc:
        messages.error(request, str(exc))
        return redirect(run.get_absolute_url())
    messages.success(request, f"Run #{new.pk} started with the same configuration.")
    return redirect(new.get_absolute_url())


@researcher_required
@require_POST
def run_reproduce_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_get(pk)
    try:
        new = eval_run_reproduce(run=run, user=signed_in(request.user))
    except EvalError as exc:
        messages.error(request, str(exc))
        return redirect(run.get_absolute_url())
    messages.success(
        request, f"Run #{new.pk} reproduces run #{run.pk}; its page compares every image when done."
    )
    return redirect(new.get_absolute_url())
