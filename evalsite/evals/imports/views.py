"""Web and REST doors of imported runs: parse, call `eval_run_import_upload`, answer."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsite.core.answers import api_error
from evalsite.core.formfields import ApiWholeNumber
from evalsite.core.roles import CanResearch, researcher_required, signed_in
from evalsite.core.scopes import EVALUATE, ScopeMap
from evalsite.core.text import NOTE_MAX
from evalsite.datasets.errors import VersionSpecError
from evalsite.datasets.selectors import dataset_version_resolve
from evalsite.evals.api.views import run_created
from evalsite.evals.errors import EvalError
from evalsite.evals.imports.checks import ImportRefused
from evalsite.evals.imports.forms import ImportForm
from evalsite.evals.imports.services import parity_run_get
from evalsite.evals.imports.upload import eval_run_import_upload
from models.api.serializers import upload_size_checked
from models.errors import VersionNotFound
from models.forms import max_upload_bytes
from models.selectors import model_version_resolve
from models.views import form_errors


@researcher_required
def run_import_view(request: HttpRequest) -> HttpResponse:
    """Import form; its JS (the registry's upload.js) posts by XHR for a progress bar, JSON back."""
    wants_json = request.headers.get("x-requested-with") == "XMLHttpRequest"
    form = ImportForm(request.POST or None, request.FILES or None, initial=request.GET.dict())
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            parity = None
            if data["parity_run"]:
                parity = parity_run_get(
                    run_id=data["parity_run"], dataset_version=data["dataset_version"]
                )
            run = eval_run_import_upload(
                upload=data["file"],
                model_version=data["model_version"],
                dataset_version=data["dataset_version"],
                user=signed_in(request.user),
                latency=data["latency"],
                parity_of=parity,
                **form.metadata(),
            )
        except ImportRefused as exc:
            problems = exc.problems
        except EvalError as exc:
            problems = [str(exc)]
        else:
            messages.success(request, f"Run #{run.pk} imported; scoring is queued.")
            if wants_json:
                return JsonResponse({"redirect": run.get_absolute_url()})
            return redirect(run.get_absolute_url())
    failed = bool(form.errors or problems)
    if wants_json and request.method == "POST":
        errors = form_errors(form) + [f"Nothing was imported: {p}" for p in problems]
        return JsonResponse({"errors": errors}, status=400)
    context = {"form": form, "problems": problems, "max_upload_bytes": max_upload_bytes()}
    return render(request, "evals/import.html", context, status=400 if failed else 200)


class ImportSerializer(serializers.Serializer):  # type: ignore[type-arg]
    model = serializers.CharField(help_text="FAMILY:VERSION or FAMILY:ALIAS")
    dataset = serializers.CharField(help_text="NAME or NAME:HASH-PREFIX")
    file = serializers.FileField(help_text="zip of <stem>.png alphas")
    latency = serializers.FileField(required=False)
    device = serializers.CharField(required=False, allow_blank=True, max_length=128, default="")
    os = serializers.CharField(required=False, allow_blank=True, max_length=128, default="")
    runtime_label = serializers.CharField(
        required=False, allow_blank=True, max_length=128, default=""
    )
    compute_units = serializers.CharField(
        required=False, allow_blank=True, max_length=64, default=""
    )
    provenance = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=NOTE_MAX
    )
    ignore_extra = serializers.BooleanField(required=False, default=False)
    parity_run = ApiWholeNumber(required=False, min_value=1)

    def validate_file(self, value: Any) -> Any:
        return upload_size_checked(value)


class RunImport(APIView):
    """POST multipart (token auth): a zip of predictions → 201 the queued imported run."""

    permission_classes = [IsAuthenticated, CanResearch]
    required_scope: ScopeMap = {"POST": EVALUATE}
    request_serializers = {"POST": ImportSerializer}

    def post(self, request: Request) -> Response:
        data = ImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v: dict[str, Any] = dict(data.validated_data)
        try:
            version = model_version_resolve(v.pop("model"), require_ready=True)
        except VersionNotFound as exc:
            return api_error(400, str(exc), fields={"model": [str(exc)]})
        try:
            dataset_version = dataset_version_resolve(v.pop("dataset"))
        except VersionSpecError as exc:
            return api_error(400, str(exc), fields={"dataset": [str(exc)]})
        try:
            parity_id = v.pop("parity_run", None)
            parity = None
            if parity_id is not None:
                parity = parity_run_get(run_id=parity_id, dataset_version=dataset_version)
            run = eval_run_import_upload(
                upload=v.pop("file"),
                parity_of=parity,
                latency=v.pop("latency", None),
                model_version=version,
                dataset_version=dataset_version,
                user=signed_in(request.user),
                **v,
            )
        except ImportRefused as exc:
            return api_error(400, str(exc), problems=exc.problems)
        except EvalError as exc:
            return api_error(400, str(exc))
        return run_created(request, run)
