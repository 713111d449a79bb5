"""Registry pages: thin views that parse a form, call one service or selector, and render."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token

from evalsite.core.roles import AuthenticatedHttpRequest, can_release, researcher_required
from evalsite.core.scopes import CI_SCOPES, SCOPES, role_scopes
from models import selectors, services
from models.errors import RegistryError
from models.forms import (
    AliasMoveForm,
    ConvertForm,
    ExternalVersionForm,
    UploadForm,
    max_upload_bytes,
)
from models.models import PRODUCTION, ModelFormat, VersionStatus
from models.services.tokens import token_expiry
from pipelines.spec.declared import DIGEST_FIELDS


@researcher_required
def family_list(request: HttpRequest) -> HttpResponse:
    return render(request, "registry/families.html", {"families": selectors.family_rows()})


@researcher_required
def family_detail(request: HttpRequest, family: str) -> HttpResponse:
    fam = selectors.family_get(family)
    return render(request, "registry/family.html", _family_context(request, fam, None))


def _family_context(request: HttpRequest, fam: Any, form: AliasMoveForm | None) -> dict[str, Any]:
    versions = list(selectors.family_versions(fam))
    ready = [v.version for v in versions if v.status == VersionStatus.READY]
    return {
        "family": fam,
        "versions": versions,
        "aliases": selectors.family_aliases(fam),
        "history": selectors.alias_history(fam),
        "form": form or AliasMoveForm(versions=ready),
        "can_release": can_release(request.user),
    }


@researcher_required
@require_POST
def alias_move(request: AuthenticatedHttpRequest, family: str) -> HttpResponse:
    fam = selectors.family_get(family)
    ready = list(fam.versions.filter(status=VersionStatus.READY).values_list("version", flat=True))
    form = AliasMoveForm(request.POST, versions=ready)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.alias_move(
                family=fam,
                name=data["name"],
                version=fam.versions.get(version=data["version"]),
                user=request.user,
                reason=data["reason"],
            )
        except RegistryError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{fam.name}:{data['name']} now points at {data['version']}.")
            return redirect("registry:family", family=fam.name)
    # PermissionDenied (a researcher moving production) propagates: a 403 page, like the API.
    return render(request, "registry/family.html", _family_context(request, fam, form), status=400)


@researcher_required
def version_detail(request: HttpRequest, family: str, version: str) -> HttpResponse:
    row = selectors.model_version_get(family=family, version=version)
    context = {
        "v": row,
        "spec_pretty": json.dumps(_spec_for_display(row.spec), indent=2),
        "report_pretty": json.dumps(row.validation_report, indent=2)
        if row.validation_report
        else "",
        "lineage": selectors.version_lineage(row),
        "children": list(row.children.all()),
        "aliases": list(row.aliases.all()),
        "conversion_jobs": selectors.conversion_jobs(row),
        "runs": selectors.version_runs(row),
        "can_convert": row.format == ModelFormat.TORCH_EXPORT and row.is_ready,
        "convert_form": ConvertForm(),
        "declared_data": [(role, len(d)) for role, d in row.declared_data.items() if d],
        "production": row.family.aliases.filter(name=PRODUCTION).select_related("version").first(),
        "refresh": not row.is_finished,
    }
    return render(request, "registry/version.html", context)


def _spec_for_display(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with its (hundreds of) declared digests summarised; the API has them all."""
    training = spec.get("training")
    if not isinstance(training, dict):
        return spec
    shown = {
        key: f"<{len(value)} sha256 digests>" if key in DIGEST_FIELDS and value else value
        for key, value in training.items()
    }
    return {**spec, "training": shown}


@researcher_required
@require_POST
def version_convert(request: AuthenticatedHttpRequest, family: str, version: str) -> HttpResponse:
    row = selectors.model_version_get(family=family, version=version)
    form = ConvertForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a conversion target: onnx or coreml.")
    else:
        try:
            services.model_version_convert_enqueue(
                version=row, target=form.cleaned_data["target"], user=request.user
            )
        except RegistryError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"Conversion to {form.cleaned_data['target']} queued; the child version appears "
                "here when it is converted and validated.",
            )
    return redirect(row.get_absolute_url())


@researcher_required
def upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Upload form; the page's JS posts it by XHR (progress bar) and gets JSON back."""
    wants_json = request.headers.get("x-requested-with") == "XMLHttpRequest"
    form = UploadForm(request.POST or None, request.FILES or None, initial=request.GET.dict())
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                result = services.model_version_register(
                    family=data["family"],
                    version=data["version"],
                    file=data["file"],
                    spec=data["spec"],
                    user=request.user,
                    parent=data["parent"] or None,
                    notes=data["notes"],
                    card=data["card"],
                    original_filename=data["file"].name,
                    validate="job",
                )
            except RegistryError as exc:
                form.add_error(None, str(exc))
            else:
                row = result.version
                if row.status == VersionStatus.REJECTED:
                    messages.error(request, f"{row.ref} was rejected: {row.rejection_reason}")
                elif not result.created:
                    messages.info(request, f"{row.ref} already holds this exact file; unchanged.")
                else:
                    messages.success(request, f"{row.ref} uploaded; validation is queued.")
                if wants_json:
                    return JsonResponse({"redirect": row.get_absolute_url(), "status": row.status})
                return redirect(row.get_absolute_url())
        if wants_json:
            return JsonResponse({"errors": form_errors(form)}, status=400)
    context = {"form": form, "max_upload_bytes": max_upload_bytes()}
    return render(request, "registry/upload.html", context, status=400 if form.errors else 200)


@researcher_required
def upload_external(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Register a version with no runnable file (its runs are imported predictions)."""
    form = ExternalVersionForm(request.POST or None, initial=request.GET.dict())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = services.model_version_register(
                family=data["family"],
                version=data["version"],
                file=None,
                spec=None,
                user=request.user,
                parent=data["parent"] or None,
                notes=data["notes"],
                external=True,
                provenance=data["provenance"],
            )
        except RegistryError as exc:
            form.add_error(None, str(exc))
        else:
            row = result.version
            if result.created:
                messages.success(request, f"{row.ref} registered; import its predictions next.")
            else:
                messages.info(request, f"{row.ref} was already registered; unchanged.")
            return redirect(row.get_absolute_url())
    status = 400 if form.errors else 200
    return render(request, "registry/external.html", {"form": form}, status=status)


def form_errors(form: forms.Form) -> list[str]:
    """Every error of a form as `Label: message` lines (the XHR upload pages show them)."""
    out: list[str] = []
    for field, errors in form.errors.items():
        label = "" if field == "__all__" else f"{form.fields[field].label or field}: "
        out.extend(f"{label}{e}" for e in errors)
    return out


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError as exc:
        raise ValueError("expiry: a whole number of days (0: never)") from exc


@researcher_required
def tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The user's own API token: create (key shown once), replace, revoke."""
    new_key = ""
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create":
            try:
                new_key = services.api_token_create(
                    user=request.user,
                    scopes=request.POST.getlist("scopes"),
                    expires_at=token_expiry(_int_or_none(request.POST.get("expires_days"))),
                    name=request.POST.get("name", ""),
                ).key
            except (ValueError, PermissionDenied) as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, "New token created. Copy it now: it is shown only once.")
        elif action == "revoke":
            if services.api_token_revoke(user=request.user):
                messages.success(request, "Your API token was revoked; clients using it get 401.")
            else:
                messages.info(request, "You had no API token.")
            return redirect("registry:tokens")
    user = request.user
    assert isinstance(user, AbstractBaseUser)  # researcher_required: never anonymous here
    token = Token.objects.filter(user=user).select_related("policy").first()
    policy = getattr(token, "policy", None) if token is not None else None
    held = policy.scopes if policy is not None else role_scopes(user)
    context = {
        "token": token,
        "policy": policy,
        "held_scopes": held,
        "scopes": [
            {"name": k, "text": v, "checked": k in CI_SCOPES}
            for k, v in SCOPES.items()
            if k in role_scopes(user)
        ],
        "new_key": new_key,
        "api_base": request.build_absolute_uri(reverse("registry:api-families")),
    }
    return render(request, "registry/tokens.html", context)
