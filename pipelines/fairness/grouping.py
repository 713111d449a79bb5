"""Fairness groups from per-item attribute labels.

Vocabulary (docs/contracts/platform.md): ``skin_tone`` is a Monk scale number ``1``..``10``,
``not_applicable`` (no person) or ``unknown`` (can't tell); ``perceived_gender`` is ``woman``,
``man``, ``other``, ``not_applicable`` or ``unknown``.

Conventions:
- Monk tones are grouped per set (default ``1-3,4-7,8-10``); the grouping must cover 1-10 exactly
  once, and a grouping that does not is refused with the tones it misses or repeats named.
- Group labels are ASCII (``8-10``, ``woman``, ``8-10 x woman``), as the fairness JSON requires.
- ``not_applicable`` items are excluded from an attribute (they hold no person); ``unknown`` is its
  own group. An intersection excludes an item when either side is ``not_applicable``; an
  ``unknown`` side stays part of the label (``unknown x woman``).
"""

from __future__ import annotations

import re

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipelines.parse import int_or_none

DEFAULT_TONE_GROUPS = "1-3,4-7,8-10"
NOT_APPLICABLE = "not_applicable"
UNKNOWN = "unknown"
SKIN_TONE = "skin_tone"
GENDER = "perceived_gender"
INTERSECTION = "skin_tone_x_perceived_gender"
ATTRIBUTES = (SKIN_TONE, GENDER, INTERSECTION)
INTERSECTION_SEP = " x "
MONK_TONES = tuple(range(1, 11))

ToneGroups = list[tuple[int, int]]

# ASCII digits only (`\d` also matches other scripts' digits), at most 3 of them.
_PART = re.compile(r"([0-9]{1,3})\s*(?:-|–|\.\.)\s*([0-9]{1,3})|([0-9]{1,3})")


def tone_number(label: str) -> int | None:
    """The Monk tone a label names (`"7"` → 7); None for not_applicable, unknown or anything
    that is not an ASCII number from 1 to 10."""
    return int_or_none(label, lo=1, hi=10)


def _ranges(tones: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    out: list[str] = []
    start = prev = tones[0]
    for t in [*tones[1:], None]:
        if t is not None and t == prev + 1:
            prev = t
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if t is not None:
            start = prev = t
    return ", ".join(out)


def parse_tone_groups(text: str) -> ToneGroups:
    """Parse ``"1-3,4-7,8-10"`` into ``[(1, 3), (4, 7), (8, 10)]`` (sorted).

    Raises ValueError naming the problem: a malformed part, a tone outside 1-10, the tones no group
    covers ("tones 4-5 are in no group") or the tones two groups share.
    """
    groups: list[tuple[int, int]] = []
    for part in (p.strip() for p in str(text).split(",")):
        m = _PART.fullmatch(part)
        if not m:
            raise ValueError(f"skin-tone group {part!r} must look like 1-3 or 5")
        lo, hi = (int(m.group(1)), int(m.group(2))) if m.group(1) else (int(m.group(3)),) * 2
        if not 1 <= lo <= hi <= 10:
            raise ValueError(f"skin-tone group {part!r} must lie within the Monk scale 1-10")
        groups.append((lo, hi))
    counts = {t: 0 for t in MONK_TONES}
    for lo, hi in groups:
        for t in range(lo, hi + 1):
            counts[t] += 1
    missing = [t for t, c in counts.items() if c == 0]
    repeated = [t for t, c in counts.items() if c > 1]
    problems = []
    if missing:
        word = "tone" if len(missing) == 1 else "tones"
        problems.append(
            f"{word} {_ranges(missing)} {'is' if len(missing) == 1 else 'are'} in no group"
        )
    if repeated:
        word = "tone" if len(repeated) == 1 else "tones"
        problems.append(
            f"{word} {_ranges(repeated)} {'is' if len(repeated) == 1 else 'are'} in "
            "more than one group"
        )
    if problems:
        raise ValueError(
            f"skin-tone groups {text!r} must cover the Monk scale 1-10 exactly once: "
            f"{'; '.join(problems)} (e.g. {DEFAULT_TONE_GROUPS})"
        )
    return sorted(groups)


def format_tone_groups(groups: ToneGroups) -> str:
    """Inverse of :func:`parse_tone_groups`: ``"1-3,4-7,8-10"``."""
    return ",".join(tone_group_label(g) for g in groups)


def tone_group_label(group: tuple[int, int]) -> str:
    lo, hi = group
    return str(lo) if lo == hi else f"{lo}-{hi}"


def tone_labels(skin_tone: ArrayLike, groups: ToneGroups) -> NDArray[np.object_]:
    """Per item: its tone group label, ``unknown``, or None (``not_applicable``: excluded)."""
    lookup: dict[str, str | None] = {NOT_APPLICABLE: None, UNKNOWN: UNKNOWN}
    for g in groups:
        for t in range(g[0], g[1] + 1):
            lookup[str(t)] = tone_group_label(g)
    raw = np.asarray(skin_tone).astype(str)
    out = np.empty(raw.shape, dtype=object)
    for i, tone in enumerate(raw):
        if tone not in lookup:
            raise ValueError(
                f"item {i}: skin tone {tone!r} is not a Monk number 1-10, not_applicable or unknown"
            )
        out[i] = lookup[tone]
    return out


def gender_labels(perceived_gender: ArrayLike) -> NDArray[np.object_]:
    """Per item: the gender word, or None for ``not_applicable`` (excluded)."""
    allowed = {"woman", "man", "other", UNKNOWN}
    raw = np.asarray(perceived_gender).astype(str)
    out = np.empty(raw.shape, dtype=object)
    for i, g in enumerate(raw):
        if g == NOT_APPLICABLE:
            out[i] = None
        elif g in allowed:
            out[i] = g
        else:
            raise ValueError(
                f"item {i}: perceived gender {g!r} is not woman, man, other, "
                "not_applicable or unknown"
            )
    return out


def attribute_labels(
    skin_tone: ArrayLike, perceived_gender: ArrayLike, groups: ToneGroups
) -> dict[str, NDArray[np.object_]]:
    """Labels per attribute (skin tone group, gender, their intersection); None = excluded."""
    tones = tone_labels(skin_tone, groups)
    genders = gender_labels(perceived_gender)
    if tones.shape != genders.shape:
        raise ValueError(f"{tones.shape[0]} skin tones for {genders.shape[0]} genders")
    both = np.array(
        [
            None if t is None or g is None else f"{t}{INTERSECTION_SEP}{g}"
            for t, g in zip(tones, genders, strict=True)
        ],
        dtype=object,
    )
    return {SKIN_TONE: tones, GENDER: genders, INTERSECTION: both}


def group_order(attribute: str, labels: list[str], groups: ToneGroups) -> list[str]:
    """Display order: tone groups low to high, then genders, ``unknown`` last."""
    tone_rank = {tone_group_label(g): k for k, g in enumerate(groups)}
    gender_rank = {"woman": 0, "man": 1, "other": 2}

    def key(label: str) -> tuple[int, int, int, str]:
        if attribute == SKIN_TONE:
            return (tone_rank.get(label, 99), 0, 0, label)
        if attribute == GENDER:
            return (gender_rank.get(label, 99), 0, 0, label)
        tone, _, gender = label.partition(INTERSECTION_SEP)
        return (tone_rank.get(tone, 99), gender_rank.get(gender, 99), 0, label)

    return sorted(labels, key=key)


def display_group(attribute: str, label: str) -> str:
    """How a group is named in words: ``Monk 8-10``, ``woman``, ``Monk 8-10 x woman``."""
    if attribute == GENDER:
        return label
    if attribute == SKIN_TONE:
        return label if label == UNKNOWN else f"Monk {label}"
    tone, _, gender = label.partition(INTERSECTION_SEP)
    tone_words = "tone unknown" if tone == UNKNOWN else f"Monk {tone}"
    return f"{tone_words}{INTERSECTION_SEP}{gender}"
