"""API views: thin; parse with a serializer, call one service or selector, answer JSON.

Auth: DRF token (`Authorization: Token <key>`, keys made on the registry's token page) or the
session; no credentials → 401, a role below researcher → 403.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsite.core.answers import api_error
from evalsite.core.roles import CanResearch, signed_in
from evalsite.core.scopes import EVALUATE, ScopeMap
from evalsite.datasets.errors import VersionSpecError
from evalsite.datasets.selectors import dataset_version_resolve
from evalsite.evals.errors import EvalError
from evalsite.evals.export import run_results_document, run_status_document
from evalsite.evals.models import EvalRun
from evalsite.evals.selectors import run_get, run_list
from evalsite.evals.services.reproduce import eval_run_reproduce
from evalsite.evals.services.runs import (
    ALL_RUNTIMES,
    DEFAULT_RUNTIME,
    eval_run_cancel,
    eval_run_start,
)
from models.errors import VersionNotFound
from models.selectors import model_version_resolve

LIST_LIMIT = 100


class RunStartSerializer(serializers.Serializer):  # type: ignore[type-arg]
    model = serializers.CharField(help_text="FAMILY:VERSION or FAMILY:ALIAS")
    dataset = serializers.CharField(help_text="NAME or NAME:HASH-PREFIX")
    runtime = serializers.ChoiceField(choices=ALL_RUNTIMES, default=DEFAULT_RUNTIME)
    postprocess = serializers.DictField(required=False, default=dict)
    parity = serializers.BooleanField(required=False, default=False)


def run_created(request: Request, run: EvalRun) -> Response:
    """201: a run just started or queued, as its status document with its page's URL."""
    body = run_status_document(run_get(run.pk))
    body["url"] = request.build_absolute_uri(run.get_absolute_url())
    return Response(body, status=status.HTTP_201_CREATED)


class _Base(APIView):
    permission_classes = [IsAuthenticated, CanResearch]


class RunCollection(_Base):
    required_scope: ScopeMap = {"GET": None, "POST": EVALUATE}
    request_serializers = {"POST": RunStartSerializer}

    def get(self, request: Request) -> Response:
        runs = run_list(status=request.query_params.get("status", ""), limit=LIST_LIMIT)
        return Response([run_status_document(r) for r in runs])

    def post(self, request: Request) -> Response:
        data = RunStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v: dict[str, Any] = data.validated_data
        try:
            version = model_version_resolve(v["model"], require_ready=True)
        except VersionNotFound as exc:
            return api_error(400, str(exc), fields={"model": [str(exc)]})
        try:
            dataset_version = dataset_version_resolve(v["dataset"])
        except VersionSpecError as exc:
            return api_error(400, str(exc), fields={"dataset": [str(exc)]})
        try:
            run = eval_run_start(
                model_version=version,
                dataset_version=dataset_version,
                runtime=v["runtime"],
                postprocess=v["postprocess"],
                parity=v["parity"],
                user=signed_in(request.user),
            )
        except EvalError as exc:
            return api_error(400, str(exc))
        return run_created(request, run)


class RunStatus(_Base):
    required_scope: ScopeMap = {"GET": None}

    def get(self, request: Request, pk: int) -> Response:
        return Response(run_status_document(run_get(pk)))


class RunResults(_Base):
    required_scope: ScopeMap = {"GET": None}

    def get(self, request: Request, pk: int) -> Response:
        return Response(run_results_document(run_get(pk)))


class RunReproduce(_Base):
    """POST: start a reproduction of a done run; its status document carries `reproduce_of`, and
    `reproduction` (the stored per-image verdict) once it is done."""

    required_scope: ScopeMap = {"POST": EVALUATE}

    def post(self, request: Request, pk: int) -> Response:
        try:
            new = eval_run_reproduce(run=run_get(pk), user=signed_in(request.user))
        except EvalError as exc:
            return api_error(400, str(exc))
        return run_created(request, new)


class RunCancel(_Base):
    required_scope: ScopeMap = {"POST": EVALUATE}

    def post(self, request: Request, pk: int) -> Response:
        run = run_get(pk)
        cancelled = eval_run_cancel(run=run, reason=f"cancelled by {request.user} (API)")
        return Response({"cancelled": cancelled, **run_status_document(run_get(pk))})
