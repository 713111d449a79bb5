"""Bounds of free-text fields, one table every door (web form, REST API, CLI, service) reads.

Why bounds: a text field without one took a 1 MB paste of notes or provenance, which every page
showing it then carries. A note, provenance, reason or description is prose a person reads: a
page of it is plenty (and a longer document belongs in a linked file); a model card is a markdown
document; the short labels match their database columns (which SQLite does not enforce).
"""

from __future__ import annotations

from collections.abc import Mapping

NOTE_MAX = 10_000  # notes, provenance, descriptions
REASON_MAX = 5_000  # why an alias moved, why a release was decided (and its override)
CARD_MAX = 100_000  # a model card (markdown)
LICENCE_MAX = 500
LABEL_MAX = 128  # device, OS, runtime label of an imported run

LIMITS: dict[str, int] = {
    "notes": NOTE_MAX,
    "provenance": NOTE_MAX,
    "description": NOTE_MAX,
    "card": CARD_MAX,
    "reason": REASON_MAX,
    "override": REASON_MAX,
    "licence": LICENCE_MAX,
    "device": LABEL_MAX,
    "os": LABEL_MAX,
    "runtime_label": LABEL_MAX,
    "compute_units": 64,
}


def text_problem(field: str, value: object) -> str | None:
    """Why `value` cannot be stored in the free-text field `field` (a LIMITS key), or None."""
    limit = LIMITS[field]
    if isinstance(value, str) and len(value) > limit:
        return (
            f"{field} is {len(value):,} characters long; at most {limit:,}. Shorten it "
            "(link a longer document instead of pasting it)."
        )
    return None


def text_problems(values: Mapping[str, object]) -> list[str]:
    """Every bounded field of `values` that is too long (unknown keys are not checked)."""
    found = [text_problem(k, v) for k, v in values.items() if k in LIMITS]
    return [p for p in found if p]
