"""CSV cell neutraliser against formula injection (OWASP "CSV Injection").

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
as a formula. Text cells starting with one of them get a leading apostrophe, which spreadsheets
show as plain text. Leading white space does not hide a formula (some importers trim it, so
`` =1`` runs), nor do compatibility forms that spreadsheets or NFKC read as the ASCII sign
(fullwidth ``＝ ＋ － ＠``, small ``﹦ ﹢ ﹣``): the first character after any white space is
normalised (NFKC) before it is compared. Numbers are left alone (a negative delta stays a
number); only strings change.
Every CSV the platform writes goes through this module: `DictWriter` / `Writer` are drop-in
replacements of the `csv` ones, `neutralise_rows` serves pandas frames.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMULA_SIGNS = frozenset("=+-@")


def starts_formula(text: str) -> bool:
    """Whether a spreadsheet could read `text` as a formula (see the module docstring)."""
    if text.startswith(FORMULA_PREFIXES):
        return True
    rest = text.lstrip()
    return bool(rest) and unicodedata.normalize("NFKC", rest[0])[:1] in FORMULA_SIGNS


def neutralise(value: Any) -> Any:
    """The value to write into a CSV cell: strings that a spreadsheet would run get a quote."""
    if isinstance(value, str) and starts_formula(value):
        return "'" + value
    return value


def neutralise_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every cell of dict rows passed through :func:`neutralise`."""
    return [{k: neutralise(v) for k, v in row.items()} for row in rows]


class DictWriter(csv.DictWriter):  # type: ignore[type-arg]
    """`csv.DictWriter` whose every cell goes through :func:`neutralise` (one rule, every CSV)."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({k: neutralise(v) for k, v in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)


class Writer:
    """`csv.writer` whose every cell goes through :func:`neutralise`."""

    def __init__(self, fh: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(fh, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutralise(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
