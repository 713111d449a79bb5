"""REST doors of release reports (token auth), so a model team's CI can block a merge.

POST /releases/api/reports/ {candidate, baseline?, dataset, campaign?, wait?} creates a report
(`dataset` is one set version or a list of them: a suite, the first being the quality set);
with `wait: true` it is built in the request and the answer carries the verdict and the exit
code of `release_report` (0 pass, 3 fail, 4 insufficient, 1 error); otherwise poll
GET /releases/api/reports/<id>/ until `status` is done or failed. Every document carries the
report's recorded `inputs` and whether they moved on since (`stale`).

POST /releases/api/reports/<id>/decision/ {decision, reason, move_production?, override?}
records the report's one decision (the service behind the page and `release_decide`): 201, or
409 with exit_code 5 when the evidence moved on / does not match / a decision exists, 400 with
exit_code 6 when approving a verdict other than pass without `override`, 403 below release
manager. POST /releases/api/reports/<id>/rebuild/ builds a new report over the same inputs.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.urls import reverse
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsite.core.answers import api_error
from evalsite.core.formfields import ApiWholeNumber
from evalsite.core.roles import CanRelease, CanResearch, signed_in
from evalsite.core.scopes import DECIDE, REPORT, ScopeMap
from evalsite.core.text import REASON_MAX
from evalsite.releases.errors import EvidenceMoved, ReleaseError
from evalsite.releases.models import ReleaseDecision as ReleaseDecisionModel
from evalsite.releases.models import ReleaseReport, ReportStatus
from evalsite.releases.selectors import (
    decision_dict,
    evidence_now,
    release_report_payload,
    report_decision,
    report_get,
    report_json,
    report_list,
    report_staleness,
)
from evalsite.releases.services.decisions import release_decision_record
from evalsite.releases.services.refs import resolve_refs
from evalsite.releases.services.reports import (
    release_report_create,
    release_report_rebuild,
    release_report_run_now,
)


class ReportRequest(serializers.Serializer):  # type: ignore[type-arg]
    candidate = serializers.CharField(help_text="FAMILY:VERSION or FAMILY:ALIAS")
    baseline = serializers.CharField(required=False, default="", allow_blank=True)
    dataset = serializers.JSONField(help_text="NAME[:HASH-PREFIX], or a list of them (a suite)")
    campaign = ApiWholeNumber(required=False, allow_null=True, default=None, min_value=1)
    wait = serializers.BooleanField(required=False, default=False)

    def validate_dataset(self, value: Any) -> list[str]:
        return suite_specs(value)


def suite_specs(value: Any) -> list[str]:
    """A request's `dataset`: one set version or a non-empty list of them (a suite), each as
    written; a name with spaces around it is refused, never trimmed into another set."""
    values = [value] if isinstance(value, str) else value
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, str) and v.strip() for v in values)
    ):
        raise serializers.ValidationError(
            'a set version "NAME[:HASH-PREFIX]" or a non-empty list of them'
        )
    padded = [v for v in values if v != v.strip()]
    if padded:
        raise serializers.ValidationError(
            f"{padded[0]!r} has spaces around it: set names are used as written"
        )
    return list(values)


class DecisionRequest(serializers.Serializer):  # type: ignore[type-arg]
    decision = serializers.ChoiceField(
        choices=["approve", "reject", "needs_more_data", "more-data"]
    )
    reason = serializers.CharField(max_length=REASON_MAX)
    move_production = serializers.BooleanField(required=False, default=False)
    override = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=REASON_MAX
    )


def report_document(report: ReleaseReport, request: Request, now: Any = None) -> dict[str, Any]:
    exit_code = None
    payload = release_report_payload(report) if report.status == ReportStatus.DONE else None
    if payload is not None:
        exit_code = payload.exit_code
    elif report.status == ReportStatus.FAILED:
        exit_code = 1
    staleness = report_staleness(report, now)
    return {
        "id": report.pk, "status": report.status, "error": report.error,
        "candidate": report.candidate.ref, "baseline": report.baseline.ref,
        "dataset": report.dataset_version.spec,
        "datasets": [rs.dataset_version.spec
                     for rs in report.sets.select_related("dataset_version__dataset")],
        "verdict": report.verdict or None, "exit_code": exit_code,
        "inputs": report.inputs or {}, **staleness.as_dict(),
        "decision": decision_dict(report_decision(report)),
        "url": request.build_absolute_uri(reverse("releases:report", args=[report.pk])),
        "rebuild": request.build_absolute_uri(reverse("releases:api_rebuild", args=[report.pk]))
        if staleness.stale else None,
        "report": report_json(report, staleness),
    }  # fmt: skip


class ReportCollection(APIView):
    permission_classes = [IsAuthenticated, CanResearch]
    required_scope: ScopeMap = {"GET": None, "POST": REPORT}
    request_serializers = {"POST": ReportRequest}

    def get(self, request: Request) -> Response:
        reports = report_list(limit=50)
        now = evidence_now(reports)
        return Response([report_document(r, request, now) for r in reports])

    def post(self, request: Request) -> Response:
        data = ReportRequest(data=request.data)
        data.is_valid(raise_exception=True)
        v: dict[str, Any] = data.validated_data
        try:
            refs = resolve_refs(candidate=v["candidate"], baseline=v["baseline"],
                                dataset=v["dataset"], campaign=v["campaign"])  # fmt: skip
            report = release_report_create(
                candidate=refs.candidate, baseline=refs.baseline,
                dataset_versions=refs.dataset_versions, campaign=refs.campaign,
                user=signed_in(request.user), enqueue=not v["wait"],
            )  # fmt: skip
        except ReleaseError as exc:
            return api_error(400, str(exc), exit_code=1)
        if v["wait"]:
            try:
                report = release_report_run_now(report=report)
            except Exception:  # recorded on the row: the document says failed with the reason
                report = report_get(report.pk)
        report = report_get(report.pk)
        return Response(report_document(report, request), status=status.HTTP_201_CREATED)


class ReportDetail(APIView):
    permission_classes = [IsAuthenticated, CanResearch]
    required_scope: ScopeMap = {"GET": None}

    def get(self, request: Request, pk: int) -> Response:
        return Response(report_document(report_get(pk), request))


class ReportDecision(APIView):
    permission_classes = [IsAuthenticated, CanRelease]
    required_scope: ScopeMap = {"POST": DECIDE}
    request_serializers = {"POST": DecisionRequest}

    def post(self, request: Request, pk: int) -> Response:
        report = report_get(pk)
        data = DecisionRequest(data=request.data)
        data.is_valid(raise_exception=True)
        v: dict[str, Any] = data.validated_data
        try:
            decision = release_decision_record(
                report=report, user=signed_in(request.user), decision=v["decision"],
                reason=v["reason"], move_production=v["move_production"], override=v["override"],
            )  # fmt: skip
        except PermissionDenied as exc:
            return api_error(403, str(exc), exit_code=1)
        except EvidenceMoved as exc:
            return api_error(409, str(exc), exit_code=exc.exit_code)
        except ReleaseError as exc:
            return api_error(400, str(exc), exit_code=exc.exit_code)
        decision = ReleaseDecisionModel.objects.select_related(
            "decided_by", "alias_move__to_version__family"
        ).get(pk=decision.pk)
        return Response({**(decision_dict(decision) or {}), "report": report.pk, "exit_code": 0},
                        status=status.HTTP_201_CREATED)  # fmt: skip


class ReportRebuild(APIView):
    permission_classes = [IsAuthenticated, CanResearch]
    required_scope: ScopeMap = {"POST": REPORT}

    def post(self, request: Request, pk: int) -> Response:
        try:
            new = release_report_rebuild(report=report_get(pk), user=signed_in(request.user))
        except ReleaseError as exc:
            return api_error(400, str(exc), exit_code=1)
        return Response(report_document(report_get(new.pk), request), status=201)
