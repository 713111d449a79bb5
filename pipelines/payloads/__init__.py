"""Typed, versioned documents that one app stores and another reads.

Each stored JSON document (a run's summary, a campaign snapshot, a release report, a fairness
report) has one frozen dataclass here with a `version`, `to_dict()` (what the producer stores) and
`from_dict()` (what the owning app's reader calls): it checks the version and the keys the
consumers rely on and raises `PayloadError` naming the document and the key, so a producer and a
consumer cannot drift apart unseen. Rows stored before documents carried a version read as
version 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

#: A JSON value as a JSONField stores it. Functions one app calls on another's behalf with a
#: document only the callee interprets (a job's chunk payload, a run's post-processing settings)
#: take this, not `Any`: the caller may only hand over JSON. Read-only containers, so a
#: `list[int]` or `dict[str, str]` is one.
JsonValue: TypeAlias = (
    "str | int | float | bool | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)
#: A JSON object (`{...}`).
JsonObject: TypeAlias = "Mapping[str, JsonValue]"


class PayloadError(ValueError):
    """A stored document this code cannot read: unknown version, missing key or wrong type."""


def version_of(doc: Mapping[str, Any], *, what: str, supported: tuple[int, ...]) -> int:
    """The document's version (1 when it carries none: rows stored before versions existed)."""
    if not isinstance(doc, Mapping):
        raise PayloadError(f"{what}: expected a JSON object, got {type(doc).__name__}")
    version = doc.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version not in supported:
        known = ", ".join(map(str, supported))
        raise PayloadError(f"{what}: unknown version {version!r} (this code reads {known})")
    return version


def need(doc: Mapping[str, Any], key: str, *, what: str) -> Any:
    """`doc[key]`, or a PayloadError naming the document and the missing key."""
    if not isinstance(doc, Mapping):
        raise PayloadError(f"{what}: expected a JSON object, got {type(doc).__name__}")
    if key not in doc:
        raise PayloadError(f"{what}: missing key {key!r}")
    return doc[key]


def integer(value: Any, *, what: str) -> int:
    """`value` when it is a JSON integer (not a bool), else a PayloadError naming it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{what} must be an integer, got {value!r}")
    return value


def optional_float(value: Any, *, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{what}: expected a number or null, got {value!r}")
    return float(value)
