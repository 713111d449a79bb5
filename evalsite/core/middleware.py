"""Translate domain errors into answers at the edge, by the one table
`evalsite.core.errors.STATUS_OF` (`NotFound` → 404, `InvalidInput` from pipelines.parse → 400
with its message), and an id in a URL path past what a database holds into 404. Pages answer
Django's error pages; the REST API the one JSON error shape (`evalsite.core.errors.error_body`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from rest_framework.exceptions import APIException, ParseError
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from evalsite.core.errors import SERVER_ERROR, error_body, status_of
from evalsite.core.parsers import json_max_bytes
from pipelines.parse import MAX_ID

log = logging.getLogger("django.request")


class NotFoundMiddleware:
    """A page whose selector raised NotFound answers the 404 page with the error's message; any
    other domain error of `STATUS_OF` (input that did not parse, a refused or conflicting
    request) its status with the message (plain text: it may quote the input)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: dict[str, Any]
    ) -> None:
        """An `<int:…>` path segment takes any number of digits; one past the largest id a
        database column holds names nothing (and reached a foreign-key lookup as a 500)."""
        for name, value in kwargs.items():
            if isinstance(value, int) and not 0 <= value <= MAX_ID:
                raise Http404(f"{name}: no such id")

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        mapped = status_of(exception)
        if mapped is None:
            return None
        if mapped[0] == 404:
            raise Http404(str(exception)) from exception
        return HttpResponse(
            str(exception), status=mapped[0], content_type="text/plain; charset=utf-8"
        )


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Every REST error as the one JSON error shape: a domain error by `STATUS_OF`, REST
    framework's own (validation, authentication, permission, throttling) with its status and
    code, a body over DATA_UPLOAD_MAX_MEMORY_SIZE as a 400 naming the limit; anything else a 500
    with a fixed message (logged with its traceback, never shown)."""
    mapped = status_of(exc)
    if mapped is not None:
        set_rollback()
        status, code = mapped
        return Response(error_body(status, str(exc), code=code), status=status)
    if isinstance(exc, RequestDataTooBig):  # else Django's bare HTML 400, no reason given
        exc = ParseError(f"JSON parse error - the body is over {json_max_bytes()} bytes")
    response = exception_handler(exc, context)
    if response is None:
        set_rollback()
        request = context.get("request")
        log.error("API view failed: %s", getattr(request, "path", "?"), exc_info=exc)
        # As Django's own 500 does, so a test client re-raises and bugs stay visible there.
        got_request_exception.send(sender=None, request=request)
        return Response(error_body(500, SERVER_ERROR), status=500)
    response.data = _error_document(response.status_code, exc, response.data)
    return response


def _error_document(status: int, exc: Exception, data: Any) -> dict[str, Any]:
    """REST framework's `{"detail": …}` / `{field: [messages]}` / `[messages]` as the one shape."""
    code = ""
    if isinstance(exc, APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else getattr(exc, "default_code", "")
    if isinstance(data, dict) and set(data) == {"detail"}:
        return error_body(status, str(data["detail"]), code=code)
    if isinstance(data, dict):
        fields = {
            name: [str(m) for m in value] if isinstance(value, list) else [str(value)]
            for name, value in data.items()
        }
        general = fields.pop("non_field_errors", [])
        parts = general + [f"{name}: {' '.join(msgs)}" for name, msgs in fields.items()]
        return error_body(status, "; ".join(parts) or "invalid input", code=code, fields=fields)
    messages = [str(m) for m in data] if isinstance(data, list) else [str(data)]
    return error_body(status, "; ".join(messages), code=code)


__all__ = ["NotFoundMiddleware", "api_exception_handler"]
