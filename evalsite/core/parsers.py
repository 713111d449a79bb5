"""REST framework's JSON parser, bounded: the body's size, its nesting depth and its numbers.

Why: Python's json raises RecursionError on 100 000 nested `[`, which DRF does not catch (a 500),
and reads NaN, Infinity and 1e999 as floats no database stores. Here the body is parsed by
`pipelines.parse.loads_json` (depth, finite numbers) and read at most DATA_UPLOAD_MAX_MEMORY_SIZE
bytes (DRF hands JSON parsers `request.body`, which Django bounds already; the API's exception
handler answers that refusal as a 400 naming the limit); every problem is a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from pipelines.parse import JSON_MAX_DEPTH, InvalidJSON, loads_json


def json_max_bytes() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 10 * 1024 * 1024)


class BoundedJSONParser(JSONParser):
    def parse(
        self,
        stream: IO[bytes] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        if stream is None:
            return None
        limit = json_max_bytes()
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise ParseError(f"JSON parse error - the body is over {limit} bytes")
        try:
            return loads_json(body, max_depth=JSON_MAX_DEPTH, max_bytes=limit)
        except InvalidJSON as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


__all__ = ["BoundedJSONParser"]
