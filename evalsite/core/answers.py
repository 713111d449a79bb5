"""Error answers in the one JSON shape (`evalsite.core.errors.error_body`): `api_error` for REST
framework views, `json_error` for the plain Django views that answer JSON (the rating pages)."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from rest_framework.response import Response

from evalsite.core.errors import error_body


def api_error(
    status: int,
    message: str,
    *,
    code: str = "",
    fields: dict[str, list[str]] | None = None,
    **extra: Any,
) -> Response:
    """A REST error answer; `extra` goes beside `error` (the release doors' `exit_code`)."""
    return Response({**error_body(status, message, code=code, fields=fields), **extra}, status)


def json_error(status: int, message: str, *, code: str = "") -> JsonResponse:
    return JsonResponse(error_body(status, message, code=code), status=status)


__all__ = ["api_error", "json_error"]
