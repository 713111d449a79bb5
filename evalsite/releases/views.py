"""Release pages: leaderboard (landing page), reports, decisions, history, gate settings.

Views are thin: parse a form, call one service or selector, render. GET never writes: the
leaderboard reads stored rows, a report page reads its stored JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from evalsite.core.inputs import query_id
from evalsite.core.roles import can_release, manager_required, researcher_required, signed_in
from evalsite.releases import selectors
from evalsite.releases.errors import EvidenceMoved, ReleaseError
from evalsite.releases.export import (
    GALLERY_SECTIONS,
    export_csv,
    export_html,
    figures,
    gallery_images,
)
from evalsite.releases.forms import DecisionForm, GateConfigForm, ReportForm, split_sets
from evalsite.releases.models import GateConfig, ReleaseReport, ReportStatus
from evalsite.releases.services.decisions import (
    DECIDE_DENIED,
    gate_config_update,
    release_decision_record,
)
from evalsite.releases.services.refs import resolve_refs
from evalsite.releases.services.reports import release_report_create, release_report_rebuild
from models.models import ModelFamily
from pipelines.metrics.registry import PRIMARY, label, leaderboard_metrics, stored_metrics

#: Leaderboard columns after the registry's metric columns (these are not metrics of a run).
HEADERS = (
    ("latency_p50", "p50"), ("latency_p99", "p99 / max"), ("gated_no_subject", "gated: no subject"),
    ("gated_subject", "gated: subject"), ("worst_group_iou", "worst-group IoU"),
    ("fairness_gap", "largest gap"),
)  # fmt: skip


def leaderboard_page(request: HttpRequest) -> HttpResponse:
    """The leaderboard (also the home page of researchers, release managers and admins)."""
    sets = selectors.leaderboard_sets()
    banner = selectors.leaderboard_banner()
    chosen = None
    wanted = query_id(request, "set")  # malformed: 400 with the parser's message
    if wanted is not None:
        chosen = next((s for s in sets if s.pk == wanted), None)
    if chosen is None and sets:
        # By default the set the newest release report judged quality on: the one the banner
        # above the table speaks of.
        judged = banner["report"].dataset_version_id if banner else None
        chosen = next((s for s in sets if s.pk == judged), sets[0])
    family = request.GET.get("family", "")
    runtime = request.GET.get("runtime", "")
    sort = request.GET.get("sort", "iou")
    direction = request.GET.get("dir", "")
    people = selectors.people_sort_metric(family)
    # "people": the family's metric that best predicts people, as the leaderboard job stored it
    by = (people["metric"] if people else PRIMARY) if sort == selectors.PEOPLE_SORT else sort
    rows = (
        selectors.leaderboard_rows(
            dataset_version=chosen, family=family, runtime=runtime, sort=by,
            descending=None if not direction else direction == "desc",
        )
        if chosen else []
    )  # fmt: skip
    reports = selectors.newest_reports_by_pair(chosen) if chosen else {}
    return render(request, "releases/leaderboard.html", {
        "sets": sets, "chosen": chosen, "rows": rows,
        "report_of": {r.model_version_id: reports.get(r.model_version_id) for r in rows},
        "filters": selectors.leaderboard_filters(chosen) if chosen else {},
        "family": family, "runtime": runtime, "sort": sort, "dir": direction,
        "people": people, "people_sort": selectors.PEOPLE_SORT, "sorted_by": by,
        "plot": selectors.leaderboard_plot(rows), "banner": banner,
        "state": selectors.leaderboard_state(), "headers": HEADERS,
        "metrics": leaderboard_metrics(), "primary": label(PRIMARY),
    })  # fmt: skip


leaderboard_view = researcher_required(require_GET(leaderboard_page))


@researcher_required
@require_http_methods(["GET", "POST"])
def reports_view(request: HttpRequest) -> HttpResponse:
    form = ReportForm(request.POST or None, initial=request.GET or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            refs = resolve_refs(
                candidate=data["candidate"], baseline=data["baseline"],
                dataset=split_sets(data["dataset"]), campaign=data["campaign"],
            )  # fmt: skip
            report = release_report_create(
                candidate=refs.candidate, baseline=refs.baseline,
                dataset_versions=refs.dataset_versions, campaign=refs.campaign,
                user=signed_in(request.user),
            )  # fmt: skip
        except ReleaseError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Report #{report.pk} is being built.")
            return redirect(report)
    return render(
        request, "releases/reports.html",
        {"form": form, "reports": selectors.report_list_with_state()},
    )  # fmt: skip


def _report_context(request: HttpRequest, pk: int) -> dict[str, Any]:
    report = selectors.report_get(pk)
    done = report.status == ReportStatus.DONE
    return {
        "report": report, "p": report.payload, "done": done,
        "images": gallery_images(report, inline=False) if done else {},
        "figures": figures(report.payload) if done else [],
        "decisions": selectors.report_decisions(report), "decide_form": DecisionForm(),
        "decision": selectors.report_decision(report),
        "staleness": selectors.report_staleness(report),
        "suite": list(report.sets.select_related("dataset_version__dataset")),
        "can_decide": can_release(request.user), "gallery_sections": GALLERY_SECTIONS,
    }  # fmt: skip


@researcher_required
@require_GET
def report_view(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "releases/report.html", _report_context(request, pk))


@researcher_required
@require_GET
def report_json_view(request: HttpRequest, pk: int) -> JsonResponse:
    report = selectors.report_get(pk)
    staleness = selectors.report_staleness(report)
    body = {"id": report.pk, "status": report.status, "error": report.error,
            "verdict": report.verdict or None, "inputs": report.inputs or {},
            **staleness.as_dict(), "report": selectors.report_json(report, staleness)}  # fmt: skip
    return JsonResponse(body, json_dumps_params={"indent": 1})


def _report_download(
    pk: int, render_file: Callable[[ReleaseReport], str], ext: str, content_type: str
) -> HttpResponse:
    """A finished report as an attachment written by `render_file`; 409 before it is finished."""
    report = selectors.report_get(pk)
    if report.status != ReportStatus.DONE:
        return HttpResponse(f"Report #{pk} is {report.status}.", status=409)
    response = HttpResponse(render_file(report), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="release-report-{pk}.{ext}"'
    return response


@researcher_required
@require_GET
def report_html_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _report_download(pk, export_html, "html", "text/html; charset=utf-8")


@researcher_required
@require_GET
def report_csv_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _report_download(pk, export_csv, "csv", "text/csv; charset=utf-8")


@researcher_required
@require_POST
def decide_view(request: HttpRequest, pk: int) -> HttpResponse:
    if not can_release(request.user):
        # Said in words (the generic 403 page carries no reason): researchers see this.
        return HttpResponseForbidden(DECIDE_DENIED)
    report = selectors.report_get(pk)
    form = DecisionForm(request.POST)
    status = 400
    if form.is_valid():
        data = form.cleaned_data
        try:
            decision = release_decision_record(
                report=report, user=signed_in(request.user), decision=data["decision"],
                reason=data["reason"], move_production=data["move_production"],
                override=data["override"],
            )  # fmt: skip
        except EvidenceMoved as exc:
            form.add_error(None, str(exc))
            status = 409
        except ReleaseError as exc:
            form.add_error(None, str(exc))
        else:
            moved = " and production moved" if decision.alias_move_id else ""
            messages.success(request, f"Decision recorded{moved}.")
            return redirect(report)
    context = _report_context(request, pk)
    context["decide_form"] = form
    context["refused"] = True
    return render(request, "releases/report.html", context, status=status)


@researcher_required
@require_POST
def rebuild_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A new report over the same candidate, baseline, set versions and campaign."""
    report = selectors.report_get(pk)
    try:
        new = release_report_rebuild(report=report, user=signed_in(request.user))
    except ReleaseError as exc:
        messages.error(request, f"Report #{pk} cannot be rebuilt: {exc}")
        return redirect(report)
    messages.success(request, f"Report #{new.pk} rebuilds report #{pk} and is being built.")
    return redirect(new)


@researcher_required
@require_GET
def history_view(request: HttpRequest) -> HttpResponse:
    return render(request, "releases/history.html", {"decisions": selectors.release_history()})


@manager_required
@require_http_methods(["GET", "POST"])
def gates_view(request: HttpRequest) -> HttpResponse:
    families = list(ModelFamily.objects.order_by("name"))
    name = request.GET.get("family") or request.POST.get("family") or (
        families[0].name if families else ""
    )  # fmt: skip
    family = next((f for f in families if f.name == name), None)
    instance = GateConfig.objects.filter(family=family).first() if family else None
    form = GateConfigForm(request.POST or None, instance=instance or GateConfig())
    status = 200
    if request.method == "POST" and family is not None and form.is_valid():
        try:
            gate_config_update(family=family, user=signed_in(request.user), **{
                f: form.cleaned_data[f] for f in GateConfigForm.Meta.fields
            })  # fmt: skip
        except ReleaseError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Gates of {family.name} saved.")
            return redirect(f"{request.path}?family={family.name}")
    if request.method == "POST":
        status = 400  # the form again, with the reasons
    return render(request, "releases/gates.html", {
        "families": families, "family": family, "form": form,
        "configs": selectors.gate_configs(), "gate_metrics": stored_metrics(),
    }, status=status)  # fmt: skip
