"""Vocabularies and small value parsers shared by the models, the import and the pages.

Why one module: the contract in docs/contracts/platform.md fixes these words; the manifest
parser, the database choices and the page counts must never disagree about them.
"""

from __future__ import annotations

import re

from evalsite.core import names
from pipelines.fairness.grouping import parse_tone_groups, tone_number

SKIN_TONES: tuple[str, ...] = (*(str(i) for i in range(1, 11)), "not_applicable", "unknown")
GENDERS: tuple[str, ...] = ("woman", "man", "other", "not_applicable", "unknown")
ATTRIBUTE_SOURCES: tuple[str, ...] = ("manifest", "annotated", "synthetic")
NOT_APPLICABLE = "not_applicable"
UNKNOWN = "unknown"

DEFAULT_SKIN_TONE_GROUPS = "1-3,4-7,8-10"

# Object-size buckets by foreground share (small < 5 %, large > 30 %): the size slices a run page
# shows, fixed so slices of different sets and runs compare.
SMALL_MAX = 0.05
LARGE_MIN = 0.30

RESERVED_NAMES = names.RESERVED_SET_NAMES


def size_bucket(fg_fraction: float) -> str:
    """none (empty mask, a "no subject" item) / small (< 5 %) / medium / large (> 30 %)."""
    if fg_fraction <= 0.0:
        return "none"
    if fg_fraction < SMALL_MAX:
        return "small"
    if fg_fraction > LARGE_MIN:
        return "large"
    return "medium"


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a set, or None. `:` is excluded so `NAME:HASH` is unambiguous.

    The rules (canonical lower case, no invisible characters, reserved URL segments) live in
    evalsite.core.names with those of families, versions and aliases.
    """
    return names.name_problem(name, kind="set")


def _token(raw: str) -> str:
    return re.sub(r"[\s-]+", "_", raw.strip().lower())


def normalise_skin_tone(raw: str) -> str | None:
    """Manifest cell → vocabulary word; blank means "can't tell" (unknown); None when invalid."""
    value = _token(raw)
    if value == "":
        return UNKNOWN
    number = tone_number(value)  # ASCII digits only: "²" and "١٢" are not tones
    if number is not None:
        value = str(number)  # "03" → "3"
    return value if value in SKIN_TONES else None


def normalise_gender(raw: str) -> str | None:
    value = _token(raw)
    if value == "":
        return UNKNOWN
    return value if value in GENDERS else None


def normalise_attribute_source(raw: str) -> str | None:
    value = _token(raw)
    if value == "":
        return "manifest"
    return value if value in ATTRIBUTE_SOURCES else None


def parse_skin_tone_groups(text: str) -> list[tuple[int, int]]:
    """Parse "1-3,4-7,8-10" into [(1, 3), (4, 7), (8, 10)].

    The groups must cover the Monk scale 1-10 exactly once, so every person lands in one group
    and a fairness report never silently drops a tone; the error names the missing or repeated
    tones. One implementation, shared with the fairness statistics (pipelines.fairness.grouping).
    """
    return parse_tone_groups(text)


def group_label(group: tuple[int, int]) -> str:
    lo, hi = group
    return str(lo) if lo == hi else f"{lo}–{hi}"


def skin_tone_group(tone: str, groups: list[tuple[int, int]]) -> str:
    """Group label of a tone; not_applicable / unknown stay themselves (never a tone group)."""
    t = tone_number(tone)
    if t is None:
        return tone
    for group in groups:
        if group[0] <= t <= group[1]:
            return group_label(group)
    return UNKNOWN
