"""Numbers and ids from URLs and query strings, through the one strict parser (pipelines.parse).

A malformed query parameter answers 400 with the parser's message (evalsite.core.middleware
turns InvalidInput into that answer); a malformed id in a URL path names nothing that exists, so
it answers 404.
"""

from __future__ import annotations

from django.http import HttpRequest

from evalsite.core.errors import NotFound
from pipelines.parse import InvalidNumber, parse_id, parse_int


def query_int(
    request: HttpRequest, key: str, *, lo: int | None = None, hi: int | None = None
) -> int | None:
    """`?key=` as a whole number within [lo, hi]; None when absent or empty; else InvalidNumber."""
    raw = request.GET.get(key, "")
    return None if raw == "" else parse_int(raw, name=key, lo=lo, hi=hi)


def query_id(request: HttpRequest, key: str) -> int | None:
    """`?key=` as a database id; None when absent or empty; else InvalidNumber (400)."""
    raw = request.GET.get(key, "")
    return None if raw == "" else parse_id(raw, name=key)


def path_int(text: str, *, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """A number inside a URL path segment (`instance-3`): NotFound (404) when it is not one."""
    try:
        return parse_int(text, name=name, lo=lo, hi=hi)
    except InvalidNumber as exc:
        raise NotFound(str(exc)) from None


__all__ = ["path_int", "query_id", "query_int"]
