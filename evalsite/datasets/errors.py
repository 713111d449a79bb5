"""Errors of the dataset import and version lookup.

Why a report entry is a dict of file/reason/action: the same entries go to the CLI, the JSON
validation report on the version and the upload page, and every one must tell a person what to
fix (conventions: "user-facing errors name the file/row/field and what to do about it").
"""

from __future__ import annotations

from typing import Any

from evalsite.core.errors import NotFound
from pipelines.payloads import JsonObject


def entry(file: str, reason: str, action: str) -> dict[str, str]:
    return {"file": file, "reason": reason, "action": action}


def format_entry(e: dict[str, str]) -> str:
    return f"{e['file']}: {e['reason']} — {e['action']}"


class ImportRejected(Exception):
    """A fatal import problem: nothing was written (no rows, no stored files)."""

    def __init__(self, entries: list[dict[str, str]], report: JsonObject | None = None):
        self.entries = entries
        #: The import's validation report (stored as JSON on the import row), with the entries.
        self.report: dict[str, Any] = {**(report or {}), "fatal": entries}
        super().__init__("; ".join(format_entry(e) for e in entries))


class DatasetNotFound(NotFound):
    """No set, set version, item or import with that name or id; the message says which."""


class VersionSpecError(LookupError):
    """`NAME[:HASHPREFIX]` does not name exactly one dataset version."""
