"""REST endpoints (token or session auth): thin wrappers over the registry's services.

Errors: 400 for bad input (the body names the field), 401 without credentials, 403 for a role
that may not do this (e.g. a researcher moving `production`), 404 for unknown family/version.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from evalsite.core.answers import api_error
from evalsite.core.roles import CanResearch, signed_in
from evalsite.core.scopes import ALIAS, UPLOAD, scoped
from models import selectors, services
from models.api.serializers import (
    AliasMoveSerializer,
    AliasSerializer,
    VersionSerializer,
    VersionUploadSerializer,
)
from models.errors import RegistryError

PERMISSIONS = [IsAuthenticated, CanResearch]


@scoped({"GET": None})
@api_view(["GET"])
@permission_classes(PERMISSIONS)
def family_list(request: Request) -> Response:
    rows = [
        {
            "name": f.name,
            "versions": f.n_versions,  # type: ignore[attr-defined]  # family_rows annotates it
            "aliases": {a.name: a.version.version for a in f.aliases.all()},
        }
        for f in selectors.family_rows()
    ]
    return Response(rows)


@scoped({"GET": None, "POST": UPLOAD}, body={"POST": VersionUploadSerializer})
@api_view(["GET", "POST"])
@permission_classes(PERMISSIONS)
def family_versions(request: Request, family: str) -> Response:
    """GET: the family's versions. POST (multipart: file, version, spec): register one.

    POST `version`, `external=true` [notes, parent, provenance] registers an external version.
    """
    if request.method == "GET":
        fam = selectors.family_get(family)
        rows = selectors.family_versions(fam).prefetch_related("children")
        return Response(VersionSerializer(rows, many=True, context={"request": request}).data)
    form = VersionUploadSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    upload = data.get("file")
    try:
        result = services.model_version_register(
            family=family,
            version=data["version"],
            file=upload,
            spec=data.get("spec"),
            user=signed_in(request.user),
            parent=data.get("parent") or None,
            notes=data.get("notes", ""),
            original_filename=upload.name if upload else "",
            validate="job",
            external=data["external"],
            provenance=data.get("provenance", ""),
        )
    except RegistryError as exc:
        return api_error(400, str(exc))
    body = VersionSerializer(result.version, context={"request": request}).data
    return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


@scoped({"GET": None})
@api_view(["GET"])
@permission_classes(PERMISSIONS)
def version_detail(request: Request, pk: int) -> Response:
    row = selectors.model_version_by_id(pk)
    return Response(VersionSerializer(row, context={"request": request}).data)


@scoped({"GET": None, "POST": ALIAS}, body={"POST": AliasMoveSerializer})
@api_view(["GET", "POST"])
@permission_classes(PERMISSIONS)
def alias_detail(request: Request, family: str, name: str) -> Response:
    """GET: where the alias points and its history. POST {version, reason}: move it."""
    fam = selectors.family_get(family)
    if request.method == "GET":
        return Response(AliasSerializer(selectors.family_alias(fam, name)).data)
    form = AliasMoveSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    version = selectors.family_version(fam, form.validated_data["version"])
    try:
        alias = services.alias_move(
            family=fam,
            name=name,
            version=version,
            user=signed_in(request.user),
            reason=form.validated_data["reason"],
        )
    except DjangoPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from exc
    except RegistryError as exc:
        return api_error(400, str(exc))
    return Response(AliasSerializer(alias).data)
