"""REST: `GET /fairness/api/runs/<id>/` — the stored fairness JSON (docs/contracts/reports.md).

409 (the one error shape, `evalsite.core.errors`) with "no person attributes — annotate or import
a manifest" when the run's set has none; 202 `{"status": "computing", "message"}` while the report
is being computed (a GET never computes). `POST` with optional
`min_group_size`, `margin`, `skin_tone_groups` computes (and stores) a report with those
settings and returns it; a bad setting is a 400 naming the field. Auth as the other APIs: token or
session, researcher and up.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsite.core.answers import api_error
from evalsite.core.formfields import ApiDecimalNumber, ApiWholeNumber
from evalsite.core.roles import CanResearch
from evalsite.core.scopes import EVALUATE, ScopeMap
from evalsite.evals.selectors import run_get
from evalsite.fairness.inputs import NoPersonAttributes
from evalsite.fairness.selectors import fairness_state
from evalsite.fairness.services import fairness_report_compute, settings_for


class SettingsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    min_group_size = ApiWholeNumber(required=False, min_value=2, max_value=1_000_000)
    margin = ApiDecimalNumber(required=False, min_value=0.0, max_value=0.99)
    skin_tone_groups = serializers.CharField(required=False)


class RunFairness(APIView):
    permission_classes = [IsAuthenticated, CanResearch]
    required_scope: ScopeMap = {"GET": None, "POST": EVALUATE}
    request_serializers = {"POST": SettingsSerializer}

    def get(self, request: Request, pk: int) -> Response:
        state = fairness_state(run=run_get(pk))
        if state.report is not None:
            return Response(state.report.data)
        if state.pending:  # not an error: the report is on its way
            return Response({"status": "computing", "message": state.message}, status=202)
        return api_error(409, state.message, code="no_report")

    def post(self, request: Request, pk: int) -> Response:
        run = run_get(pk)
        data = SettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v: dict[str, Any] = data.validated_data
        try:
            settings = settings_for(run=run, **v)
        except ValueError as exc:
            fields = {"skin_tone_groups": [str(exc)]} if "skin-tone" in str(exc) else None
            return api_error(400, str(exc), fields=fields)
        try:
            report = fairness_report_compute(run=run, settings=settings)
        except (NoPersonAttributes, ValueError) as exc:
            return api_error(409, str(exc))
        return Response(report.data)
