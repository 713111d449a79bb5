"""Translate domain errors into answers at the edge: `NotFound` (evalsite.core.errors) into 404,
`InvalidInput` (pipelines.parse: a malformed number, id or JSON text) into 400 with its message,
and an id in a URL path past what a database holds into 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from rest_framework.exceptions import ParseError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from evalsite.core.errors import NotFound
from evalsite.core.parsers import json_max_bytes
from pipelines.parse import MAX_ID, InvalidInput


class NotFoundMiddleware:
    """A page whose selector raised NotFound answers the 404 page with the error's message; one
    whose input did not parse answers 400 with the parser's message (plain text: it may quote
    the input)."""

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
        if isinstance(exception, NotFound):
            raise Http404(str(exception)) from exception
        if isinstance(exception, InvalidInput):
            return HttpResponseBadRequest(str(exception), content_type="text/plain; charset=utf-8")
        return None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST framework's handler, with NotFound answered as a 404 `{"detail": message}`,
    InvalidInput and a body over DATA_UPLOAD_MAX_MEMORY_SIZE as a 400 `{"detail": message}`."""
    if isinstance(exc, NotFound):
        exc = Http404(str(exc))
    elif isinstance(exc, InvalidInput):
        exc = ParseError(str(exc))
    elif isinstance(exc, RequestDataTooBig):  # else Django's bare HTML 400, no reason given
        exc = ParseError(f"JSON parse error - the body is over {json_max_bytes()} bytes")
    return exception_handler(exc, context)


__all__ = ["NotFoundMiddleware", "api_exception_handler"]
