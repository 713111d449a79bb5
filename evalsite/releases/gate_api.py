"""POST /releases/api/gate/ — evaluate and gate in one call; GET /releases/api/gate/<id>/ polls.

POST (JSON, or multipart with an upload): `candidate` F:V|F:ALIAS of a registered version, or
`family` + `version` + `file` + `spec` to register one in the same request; `baseline` (default
the family's production); `dataset`, one set version or a list (the suite). `Idempotency-Key`
header (or `key`): a retry with the same key and body answers the same gate (200), a different
body under that key 409. Answers 202 with `url` to poll. The poll (a read) answers `status`
(queued/running/done/failed), `step`, `verdict`, `gates`, `failing`, `report_url` and `exit_code`
— the `release_report` command's for the same report (0 pass, 3 fail, 4 insufficient, 1 error).
Token scopes: `report` and `evaluate`, plus `upload` when the request carries a file.
"""

from __future__ import annotations

import json
from typing import Any

from django.urls import reverse
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsite.core.answers import api_error
from evalsite.core.roles import CanResearch, signed_in
from evalsite.core.scopes import EVALUATE, REPORT, UPLOAD, ScopeMap, require_token_scope
from evalsite.releases.api import suite_specs
from evalsite.releases.errors import ReleaseError
from evalsite.releases.models import GateStatus, ReleaseGate, ReportStatus
from evalsite.releases.selectors import gate_get, release_report_payload
from evalsite.releases.services.gate import (
    GateConflict,
    gate_fingerprint,
    release_gate_create,
    release_gate_existing,
)
from evalsite.releases.services.refs import resolve_refs
from models import services as registry
from models.api.serializers import NameSerializerField
from models.errors import RegistryError, VersionNotFound
from models.selectors import model_version_resolve
from pipelines.hashing import sha256_chunks


class GateRequest(serializers.Serializer):  # type: ignore[type-arg]
    candidate = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="F:V or F:ALIAS, registered"
    )
    family = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    version = NameSerializerField(kind="version", required=False)
    file = serializers.FileField(required=False)
    spec = serializers.JSONField(required=False)
    baseline = serializers.CharField(required=False, allow_blank=True, default="")
    dataset = serializers.JSONField(help_text="NAME[:HASH-PREFIX], or a list of them (a suite)")
    key = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)

    def validate_dataset(self, value: Any) -> list[str]:
        return suite_specs(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        upload = attrs.get("file") is not None
        if bool(attrs["candidate"]) == upload:
            raise serializers.ValidationError(
                "give either `candidate` (a registered version) or `family`, `version`, `file` "
                "and `spec` (an upload)"
            )
        if upload:
            missing = {f: ["required with a file"] for f in ("family", "version", "spec")
                       if not attrs.get(f)}  # fmt: skip
            if missing:
                raise serializers.ValidationError(missing)
        return attrs

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "getlist"):  # multipart: spec as a file part, dataset repeated
            sets = data.getlist("dataset")
            data = {k: data.get(k) for k in data}  # not .copy(): that deep-copies the upload
            if hasattr(data.get("spec"), "read"):
                data["spec"] = data["spec"].read().decode("utf-8", errors="replace")
            data["dataset"] = sets if len(sets) > 1 else (sets[0] if sets else None)
            if isinstance(data.get("spec"), str):
                try:
                    data["spec"] = json.loads(data["spec"])
                except ValueError:
                    raise serializers.ValidationError(
                        {"spec": ["not valid JSON: send the .spec.json contents or file part"]}
                    ) from None
        return super().to_internal_value(data)


def gate_document(gate: ReleaseGate, request: Request) -> dict[str, Any]:
    report = gate.report
    verdict, gates, exit_code = None, [], None
    if gate.status == GateStatus.DONE and report is not None and report.status == ReportStatus.DONE:
        payload = release_report_payload(report)
        if payload is not None:
            verdict, exit_code = payload.verdict, payload.exit_code
            gates = [{"name": g.name, "status": g.status, "text": g.text, "dataset": g.dataset}
                     for g in payload.gates]  # fmt: skip
    elif gate.status == GateStatus.FAILED:
        exit_code = 1
    return {
        "id": gate.pk, "status": gate.status, "step": gate.step, "error": gate.error,
        "candidate": gate.candidate.ref, "baseline": report.baseline.ref if report else
        gate.baseline_ref, "datasets": gate.datasets, "runs": gate.runs,
        "verdict": verdict, "exit_code": exit_code, "gates": gates,
        "failing": [g for g in gates if g["status"] != "pass"],
        "report": report.pk if report else None,
        "report_url": request.build_absolute_uri(reverse("releases:report", args=[report.pk]))
        if report else None,
        "url": request.build_absolute_uri(reverse("releases:api_gate", args=[gate.pk])),
    }  # fmt: skip


class GateCollection(APIView):
    permission_classes = [IsAuthenticated, CanResearch]
    required_scope: ScopeMap = {"POST": REPORT}
    request_serializers = {"POST": GateRequest}

    def post(self, request: Request) -> Response:
        # The scopes first: a token that may not do this learns it before any body error.
        with_file = "file" in request.FILES
        for scope in (EVALUATE, *((UPLOAD,) if with_file else ())):
            require_token_scope(request, scope)
        data = GateRequest(data=request.data)
        data.is_valid(raise_exception=True)
        v: dict[str, Any] = data.validated_data
        user = signed_in(request.user)
        upload = v.get("file")
        key = request.headers.get("Idempotency-Key", "") or v["key"]
        file_digest = ""
        if upload is not None:  # in blocks: a model file may be gigabytes
            file_digest = sha256_chunks(upload.chunks())
            upload.seek(0)
        fields = {k: v.get(k) for k in ("candidate", "family", "version", "spec", "baseline",
                                        "dataset")}  # fmt: skip
        fingerprint = gate_fingerprint({**fields, "file": file_digest})
        try:
            existing = release_gate_existing(user=user, key=key, fingerprint=fingerprint)
            if existing is not None:
                return Response(gate_document(existing, request), status=status.HTTP_200_OK)
            if upload is not None:
                candidate = registry.model_version_register(
                    family=v["family"], version=v["version"], file=upload, spec=v["spec"],
                    user=user, original_filename=upload.name, validate="none",
                ).version  # fmt: skip
            else:
                candidate = model_version_resolve(v["candidate"])
            refs = resolve_refs(candidate=candidate.ref, baseline=v["baseline"],
                                dataset=v["dataset"])  # fmt: skip
            gate, created = release_gate_create(
                user=user, key=key, fingerprint=fingerprint, candidate=candidate,
                baseline_ref=refs.baseline.ref, datasets=refs.dataset_versions,
            )  # fmt: skip
        except GateConflict as exc:
            return api_error(409, str(exc), exit_code=1)
        except (ReleaseError, RegistryError, VersionNotFound) as exc:
            return api_error(400, str(exc), exit_code=1)
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        body = gate_document(gate, request)
        return Response(body, status=code, headers={"Location": body["url"]})


class GateDetail(APIView):
    permission_classes = [IsAuthenticated, CanResearch]
    required_scope: ScopeMap = {"GET": None}

    def get(self, request: Request, pk: int) -> Response:
        return Response(gate_document(gate_get(pk), request))
