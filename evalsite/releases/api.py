"""REST doors of release reports (token auth), so a model team's CI can block a merge.

POST /releases/api/reports/ {candidate, baseline?, dataset, campaign?, wait?} creates a report;
with `wait: true` it is built in the request and the answer carries the verdict and the exit
code of `release_report` (0 pass, 3 fail, 4 insufficient, 1 error); otherwise poll
GET /releases/api/reports/<id>/ until `status` is done or failed.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsite.core.roles import CanResearch, signed_in
from evalsite.releases.errors import ReleaseError
from evalsite.releases.models import ReleaseReport, ReportStatus
from evalsite.releases.selectors import report_get, report_list
from evalsite.releases.services.refs import resolve_refs
from evalsite.releases.services.reports import release_report_create, release_report_run_now


class ReportRequest(serializers.Serializer):  # type: ignore[type-arg]
    candidate = serializers.CharField(help_text="FAMILY:VERSION or FAMILY:ALIAS")
    baseline = serializers.CharField(required=False, default="", allow_blank=True)
    dataset = serializers.CharField(help_text="NAME or NAME:HASH-PREFIX")
    campaign = serializers.IntegerField(required=False, allow_null=True, default=None)
    wait = serializers.BooleanField(required=False, default=False)


def report_document(report: ReleaseReport, request: Request) -> dict[str, Any]:
    exit_code = None
    if report.status == ReportStatus.DONE:
        exit_code = int(report.payload.get("exit_code", 1))
    elif report.status == ReportStatus.FAILED:
        exit_code = 1
    return {
        "id": report.pk, "status": report.status, "error": report.error,
        "candidate": report.candidate.ref, "baseline": report.baseline.ref,
        "dataset": report.dataset_version.spec, "verdict": report.verdict or None,
        "exit_code": exit_code,
        "url": request.build_absolute_uri(reverse("releases:report", args=[report.pk])),
        "report": report.payload or None,
    }  # fmt: skip


class ReportCollection(APIView):
    permission_classes = [IsAuthenticated, CanResearch]

    def get(self, request: Request) -> Response:
        return Response([report_document(r, request) for r in report_list(limit=50)])

    def post(self, request: Request) -> Response:
        data = ReportRequest(data=request.data)
        data.is_valid(raise_exception=True)
        v: dict[str, Any] = data.validated_data
        try:
            refs = resolve_refs(candidate=v["candidate"], baseline=v["baseline"],
                                dataset=v["dataset"], campaign=v["campaign"])  # fmt: skip
            report = release_report_create(
                candidate=refs.candidate, baseline=refs.baseline,
                dataset_version=refs.dataset_version, campaign=refs.campaign,
                user=signed_in(request.user), enqueue=not v["wait"],
            )  # fmt: skip
        except ReleaseError as exc:
            return Response({"detail": str(exc), "exit_code": 1},
                            status=status.HTTP_400_BAD_REQUEST)  # fmt: skip
        if v["wait"]:
            try:
                report = release_report_run_now(report=report)
            except Exception:  # recorded on the row: the document says failed with the reason
                report = report_get(report.pk)
        report = report_get(report.pk)
        return Response(report_document(report, request), status=status.HTTP_201_CREATED)


class ReportDetail(APIView):
    permission_classes = [IsAuthenticated, CanResearch]

    def get(self, request: Request, pk: int) -> Response:
        return Response(report_document(report_get(pk), request))
