"""What an operator reads: a refused request is one log line, a failure keeps its traceback,
and every page names an icon that exists (no 404 for /favicon.ico in every log)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from evalsite.core.logfilters import ExpectedRefusals
from tests.evals.factories import user_with

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """The configured console handler, writing into a buffer for the test."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(old)  # type: ignore[arg-type]


def test_a_refused_request_logs_one_line_without_a_traceback(console: io.StringIO) -> None:
    c = Client()
    c.force_login(user_with("annotator", "ann"))
    assert c.get("/system/").status_code == 403  # admins only: PermissionDenied inside
    assert c.get("/runs/999999/").status_code in (403, 404)
    lines = [line for line in console.getvalue().splitlines() if line.strip()]
    assert len(lines) == 2, lines
    assert "Forbidden" in lines[0] and "/system/" in lines[0]
    assert "Traceback" not in console.getvalue()


def test_a_server_error_keeps_its_traceback() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        exc_info = sys.exc_info()
    records: list[Any] = []
    for status in (500, 403):
        record = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "x", None, exc_info
        )
        record.status_code = status
        ExpectedRefusals().filter(record)
        records.append(record)
    assert records[0].exc_info is not None  # 500: the traceback is the point
    assert records[1].exc_info is None


def test_every_page_names_an_icon_that_is_served() -> None:
    c = Client()
    page = c.get("/login/").content.decode()
    assert 'rel="icon"' in page and "img/favicon.svg" in page
    assert finders.find("img/favicon.svg")
    response = c.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("img/favicon.svg")
