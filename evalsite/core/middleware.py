"""Translate domain `NotFound` errors (evalsite.core.errors) into 404 answers at the edge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.response import Response
from rest_framework.views import exception_handler

from evalsite.core.errors import NotFound


class NotFoundMiddleware:
    """A page whose selector raised NotFound answers the 404 page with the error's message."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if isinstance(exception, NotFound):
            raise Http404(str(exception)) from exception


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST framework's handler, with NotFound answered as a 404 `{"detail": message}`."""
    if isinstance(exc, NotFound):
        exc = Http404(str(exc))
    return exception_handler(exc, context)


__all__ = ["NotFoundMiddleware", "api_exception_handler"]
