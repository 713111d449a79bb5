"""The Server-Timing middleware the load bench reads."""

from __future__ import annotations

import re

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from ratings.timing import ServerTimingMiddleware

pytestmark = pytest.mark.no_services


def test_every_response_carries_its_server_time() -> None:
    middleware = ServerTimingMiddleware(lambda request: HttpResponse("ok"))
    response = middleware(RequestFactory().get("/rate/"))
    assert re.fullmatch(r"app;dur=\d+\.\d\d", response["Server-Timing"])
