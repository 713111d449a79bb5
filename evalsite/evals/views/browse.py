"""Per-image browsing, file serving, run comparison and downloads.

Why files go through a view: artefacts and set pictures sit under MEDIA_ROOT, which is not served
as such; every image request checks the role (annotators never reach these URLs) and only names
files by (run, item, role), never by path.
"""

from __future__ import annotations

import json
import mimetypes
from typing import Any

from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotModified,
)
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from evalsite.core import files
from evalsite.core.errors import NotFound
from evalsite.core.roles import researcher_required
from evalsite.evals.export import results_csv, run_results_document
from evalsite.evals.models import SORTABLE_METRICS
from evalsite.evals.selectors import (
    SORT_KEYS,
    biased_evidence,
    compare_page_rows,
    compare_pair,
    compare_regressions,
    compare_rows,
    identical_outputs,
    noise_run,
    result_get,
    result_rows,
    roles_by_stem,
    run_biased_evidence,
    run_get,
)
from evalsite.evals.services.artefacts import item_view, min_instance_area, run_name
from evalsite.evals.services.reproduce import within_run_noise
from evalsite.evals.views.compare import intervals_context
from pipelines.metrics.registry import by_column, run_metrics, stored_metrics

PAGE_SIZE = 24
DIFFERENT_SETS = "These runs are on different set versions; compare runs of the same set version."
COMPARE_PAGE_SIZE = 100
#: Files of the set item itself (served from the set's stored copies).
ITEM_FILES = {"photo": "web", "photo_full": "image", "gt": "mask", "gt_overlay": "web_overlay"}
#: Files a run stores per item (the scored alpha PNGs); the others are rendered on request.
RUN_FILES = ("alpha", "alpha_ungated")
#: Rendered pictures are a pure function of the photo and the alpha file (its ETag): the browser
#: may keep them, and asks again with If-None-Match after a day.
VIEW_CACHE = "private, max-age=86400"


@researcher_required
@require_GET
def run_items_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_get(pk)
    sort = request.GET.get("sort", "iou")
    if sort not in SORT_KEYS:
        sort = "iou"
    descending = request.GET.get("dir", "asc") == "desc"
    status = request.GET.get("status", "")
    rows = result_rows(run, sort=sort, descending=descending, status=status)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    roles = roles_by_stem(run_biased_evidence(run))
    for r in page:  # badges: what the version declares each shown picture was used for
        r.declared_roles = roles.get(r.item.stem, [])  # type: ignore[attr-defined]
        r.instance_strip = instance_strip(run.pk, r)  # type: ignore[attr-defined]
    return render(
        request,
        "evals/items.html",
        {
            "run": run,
            "page": page,
            "sort": sort,
            "dir": "desc" if descending else "asc",
            "status": status,
            "sort_keys": SORT_KEYS,
            # instance metrics have their own strip under the images
            "item_metrics": [m for m in stored_metrics() if not m.instances],
        },
    )


def instance_strip(run_id: int, r: Any) -> list[dict[str, Any]]:
    """One entry per predicted instance (matched to a GT instance, or extra) and per missed GT
    instance, in predicted order then GT order, from the item's stored `instance_scores`."""
    scores = r.instance_scores or {}
    if not scores.get("gt_count") or "pairs" not in scores:
        return []
    by_pred = {p["pred"]: p for p in scores["pairs"]}
    files = len(r.artefacts.get("instances") or [])
    strip: list[dict[str, Any]] = []
    for n in range(1, int(scores.get("pred_count") or 0) + 1):
        pair = by_pred.get(n)
        entry: dict[str, Any] = {"kind": "matched" if pair else "extra", "pred": n}
        if pair:
            entry.update(gt=pair["gt"], iou=pair["iou"], boundary_iou=pair["boundary_iou"])
        if n <= files:
            entry["full"] = reverse("evals:file", args=[run_id, r.item_id, f"instance-{n}"])
            entry["web"] = reverse("evals:file", args=[run_id, r.item_id, f"instance_web-{n}"])
        strip.append(entry)
    strip += [{"kind": "missed", "gt": k} for k in scores.get("missed") or []]
    return strip


@researcher_required
@require_GET
def run_item_view(request: HttpRequest, pk: int, item_id: int) -> HttpResponse:
    run = run_get(pk)
    result = result_get(run, item_id)
    metrics = [(k, result.metrics.get(k), result.ungated.get(k)) for k in result.metrics]
    return render(
        request,
        "evals/item.html",
        {
            "run": run,
            "r": result,
            "metrics": metrics,
            "declared_roles": roles_by_stem(run_biased_evidence(run)).get(result.item.stem, []),
            "instance_strip": instance_strip(run.pk, result),
            "instances": [
                (
                    reverse("evals:file", args=[run.pk, item_id, f"instance-{n}"]),
                    reverse("evals:file", args=[run.pk, item_id, f"instance_web-{n}"]),
                )
                for n in range(1, len(result.artefacts.get("instances") or []) + 1)
            ],
        },
    )


@researcher_required
@require_GET
def run_file_view(request: HttpRequest, pk: int, item_id: int, role: str) -> HttpResponseBase:
    run = run_get(pk)
    result = result_get(run, item_id)
    if role in ITEM_FILES:
        field = getattr(result.item, ITEM_FILES[role])
        if not field:
            raise NotFound("This item has no such file.")
        name = str(field.name)
    elif role in RUN_FILES:
        rel = (result.artefacts or {}).get(role)
        if not rel:
            raise NotFound("This result has no such file (the item failed).")
        try:
            name = run_name(str(rel))
        except ValueError:
            raise NotFound("Not a run file.") from None
    else:  # rendered now from the photo and the alpha file; nothing is written
        view = item_view(result.artefacts, result.item.image.name, role,
                         min_instance_area=min_instance_area(run.postprocess))  # fmt: skip
        etag = view.etag()
        if etag in request.headers.get("If-None-Match", ""):
            response: HttpResponseBase = HttpResponseNotModified()
        else:
            data, content_type = view.render()
            response = HttpResponse(data, content_type=content_type)
        response["ETag"] = etag
        response["Cache-Control"] = VIEW_CACHE
        return response
    try:  # streamed from the store: a bucket's key never reaches the browser
        handle = files.open_read(name)
    except FileNotFoundError:
        raise NotFound("The file is gone (artefacts of old runs are purged).") from None
    return FileResponse(handle, content_type=mimetypes.guess_type(name)[0])


@researcher_required
@require_GET
def compare_view(request: HttpRequest) -> HttpResponse:
    raw_a, raw_b = request.GET.get("a", "").strip(), request.GET.get("b", "").strip()
    if not raw_a or not raw_b:
        return HttpResponseBadRequest(
            "Give two run ids or model references: /runs/compare/?a=<id>&b=<id> or "
            "?a=subject-lift:production&b=subject-lift:candidate",
            content_type="text/plain; charset=utf-8",
        )
    try:
        a, b = compare_pair(raw_a, raw_b)
    except ValueError as exc:  # text/plain: the message quotes the request
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    if a.dataset_version_id != b.dataset_version_id:
        return render(
            request,
            "evals/compare.html",
            {"a": a, "b": b, "error": DIFFERENT_SETS},
            status=400,
        )
    metric = request.GET.get("metric", "iou")
    if metric not in SORTABLE_METRICS:
        metric = "iou"
    rows = compare_rows(a, b, metric=metric)
    page = Paginator(rows, COMPARE_PAGE_SIZE).get_page(request.GET.get("page"))
    ma = (a.summary or {}).get("metrics") or {}
    mb = (b.summary or {}).get("metrics") or {}
    noise_a, noise_b = noise_run(a), noise_run(b)
    summary = [
        (m.name, ma.get(m.name), mb.get(m.name),
         None if ma.get(m.name) is None or mb.get(m.name) is None else mb[m.name] - ma[m.name])
        for m in run_metrics()
    ]  # fmt: skip
    within = {
        k: within_run_noise(d, noise_a, noise_b, k) for k, _, _, d in summary if d is not None
    }
    return render(
        request,
        "evals/compare.html",
        {
            "a": a,
            "b": b,
            "metric": metric,
            "metrics": SORTABLE_METRICS,
            "lower_is_better": by_column(metric).lower_is_better,
            "page": page,
            "rows": _with_links(compare_page_rows(a, list(page), metric=metric), a.pk, b.pk),
            "summary": [(*row, within.get(row[0])) for row in summary],
            "outputs": identical_outputs(a, b),
            "noise_runs": (noise_a, noise_b),
            "biased_evidence": biased_evidence(
                versions=list({r.model_version_id: r.model_version for r in (a, b)}.values()),
                dataset_version=a.dataset_version,
            ),
            "regressions": compare_regressions(rows, metric=metric),
            **intervals_context(a, b),  # stored by the evals.compare job; never computed here
        },
    )


def item_links(run_id: int) -> Any:
    """`(item id) -> (item page URL, web cutout URL)` of a run's results, reversed once: a page of
    100 compare rows reversed 400 URLs, a tenth of its time; the item id is the last path
    segment of both routes, so it is put in place of a reversed placeholder."""
    page = reverse("evals:item", args=[run_id, 0]).removesuffix("0/")
    cutout = reverse("evals:file", args=[run_id, 0, "web_cutout"]).removesuffix("0/web_cutout")
    return lambda item_id: (f"{page}{int(item_id)}/", f"{cutout}{int(item_id)}/web_cutout")


def _with_links(rows: list[dict[str, Any]], a_id: int, b_id: int) -> list[dict[str, Any]]:
    links_a, links_b = item_links(a_id), item_links(b_id)
    for row in rows:
        row["a_page"], row["a_cutout"] = links_a(row["item"].pk)
        row["b_page"], row["b_cutout"] = links_b(row["item"].pk)
    return rows


@researcher_required
@require_GET
def run_csv_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_get(pk)
    response = HttpResponse(results_csv(run), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.csv"'
    return response


@researcher_required
@require_GET
def run_json_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_get(pk)
    body = json.dumps(run_results_document(run), indent=1, default=str)
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.json"'
    return response
