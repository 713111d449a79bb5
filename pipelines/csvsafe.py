"""CSV cell neutraliser against formula injection (OWASP "CSV Injection").

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
as a formula. Text cells starting with one of them get a leading apostrophe, which spreadsheets
show as plain text. Numbers are left alone (a negative delta stays a number); only strings change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """The value to write into a CSV cell: strings that a spreadsheet would run get a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every cell of dict rows passed through :func:`neutralise`."""
    return [{k: neutralise(v) for k, v in row.items()} for row in rows]
