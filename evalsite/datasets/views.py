"""Pages of held-out sets (researcher and up); thin: parse, call a selector/service, render."""

from __future__ import annotations

import mimetypes

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from evalsite.core import files
from evalsite.core.inputs import query_int
from evalsite.core.roles import researcher_required, signed_in
from evalsite.datasets import selectors, services
from evalsite.datasets.errors import DatasetNotFound
from evalsite.datasets.forms import UploadForm

# Derived copies only: originals (and their EXIF) are never served by the site.
SERVED_KINDS = {
    "thumb": "thumb",
    "overlay": "thumb_overlay",
    "web": "web",
    "web-overlay": "web_overlay",
}
REPORT_ROWS_SHOWN = 200


@researcher_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "datasets/list.html",
        {"datasets": selectors.dataset_list(), "imports": selectors.import_recent()},
    )


@researcher_required
def dataset_detail(request: HttpRequest, name: str) -> HttpResponse:
    dataset = selectors.dataset_get(name=name)
    return render(
        request,
        "datasets/detail.html",
        {"dataset": dataset, "versions": selectors.dataset_versions(dataset=dataset)},
    )


@researcher_required
def version_detail(request: HttpRequest, name: str, prefix: str) -> HttpResponse:
    dataset = selectors.dataset_get(name=name)
    version = selectors.version_get(dataset=dataset, prefix=prefix)
    revision = selectors.revision_pick(version=version, number=query_int(request, "rev", lo=1))
    bucket = request.GET.get("bucket") or None
    page = selectors.version_items_page(
        version=version, revision=revision, page=request.GET.get("page"), bucket=bucket
    )
    report = version.report or {}
    return render(
        request,
        "datasets/version.html",
        {
            "dataset": dataset,
            "version": version,
            "revision": revision,
            "revisions": version.attribute_revisions.all(),
            "synthetic_labels": selectors.revision_synthetic_count(revision=revision),
            "counts": selectors.version_counts(version=version, revision=revision),
            "page": page,
            "bucket": bucket,
            "licences": selectors.version_licences(version=version),
            "skipped": report.get("skipped", [])[:REPORT_ROWS_SHOWN],
            "recorded": report.get("recorded", [])[:REPORT_ROWS_SHOWN],
            "report": report,
            "rows_shown": REPORT_ROWS_SHOWN,
        },
    )


@researcher_required
def item_file(request: HttpRequest, item_id: int, kind: str) -> FileResponse:
    field = SERVED_KINDS.get(kind)
    if field is None:
        raise DatasetNotFound(f"no file kind {kind!r}")
    item = selectors.item_get(item_id=item_id)
    stored = getattr(item, field)
    try:  # streamed from the store (MEDIA_ROOT or the bucket), permission-checked above
        handle = files.open_read(stored.name)
    except FileNotFoundError:
        raise DatasetNotFound("the stored file is missing") from None
    response = FileResponse(handle, content_type=mimetypes.guess_type(stored.name)[0])
    # Content-addressed: the bytes behind this URL never change, so browsers may keep them.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@researcher_required
def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        imp = services.dataset_import_upload(
            name=form.cleaned_data["name"],
            upload=form.cleaned_data["archive"],
            user=signed_in(request.user),
            description=form.cleaned_data["description"],
        )
        return redirect("datasets:import", import_id=imp.pk)
    status = 400 if form.errors else 200
    return render(request, "datasets/upload.html", {"form": form}, status=status)


@researcher_required
def import_detail(request: HttpRequest, import_id: int) -> HttpResponse:
    imp = selectors.import_get(import_id=import_id)
    return render(request, "datasets/import.html", {"imp": imp})


def _version_url(imp: object) -> str | None:
    version = getattr(imp, "version", None)
    if version is None:
        return None
    return reverse("datasets:version", args=[version.dataset.name, version.short_hash])


@researcher_required
@never_cache
def import_progress(request: HttpRequest, import_id: int) -> JsonResponse:
    """Polled by the upload page: counts straight from the database row."""
    imp = selectors.import_get(import_id=import_id)
    return JsonResponse(
        {
            "status": imp.status,
            "phase": imp.phase,
            "processed": imp.processed,
            "total": imp.total,
            "outcome": imp.outcome,
            "message": imp.message,
            "error": imp.error,
            "finished": imp.is_finished,
            "version_url": _version_url(imp),
        }
    )
