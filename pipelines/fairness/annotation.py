"""Aggregating crowd attribute labels: k annotators per item pick a Monk tone 1-10 (or "no person"
/ "can't tell") and a perceived gender of the main subject.

Input: one row per label: item, annotator, skin tone word (``1``..``10``, ``not_applicable``,
``unknown``), perceived gender word (``woman``, ``man``, ``other``, ``not_applicable``,
``unknown``), seconds spent, in submission order.

Per item (``aggregate_labels``):
- "No person" wins when at least half of the labels say ``not_applicable``: both attributes are
  then ``not_applicable``.
- Otherwise the tone is the median of the numeric tones (the lower of the two middle values for an
  even count, so the result is always a tone someone picked), provided at least half of the
  person labels gave a number; else ``unknown``. Tone agreement = share of person labels within
  one Monk step of that median (the scale is ordinal; neighbouring swatches are close).
- Gender is the strict majority among the person labels, else ``unknown``; gender agreement =
  share of person labels that equal it.
- Agreement needs two labels: an item with one label has no agreement (None, "not measurable
  (one label per item)"), never 1.0; the campaign's means and alphas cover items with two or more.

Per annotator (``annotator_label_qc``), the crowd consensus of the *other* annotators plays the
role gold tasks play in pairwise campaigns: consensus accuracy = share of the annotator's labels
on items with at least two other labels where their tone is within one step of the others'
median and their gender equals the others' majority. Flagged below ``threshold`` with at least
``min_items`` such items. Time and straight-lining (longest run of identical answers) as in
pipelines.stats.qc.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from pipelines.stats.agreement import krippendorff_alpha, not_measurable_reason
from pipelines.stats.qc import longest_run

from .grouping import NOT_APPLICABLE, UNKNOWN, tone_number

DEFAULT_THRESHOLD = 0.6
DEFAULT_MIN_ITEMS = 10
DEFAULT_MAX_RUN = 15


@dataclass(frozen=True)
class ItemLabel:
    item: str
    skin_tone: str
    perceived_gender: str
    labels: int
    tone_agreement: float | None
    gender_agreement: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tone_median(tones: list[int]) -> int:
    ordered = sorted(tones)
    return ordered[(len(ordered) - 1) // 2]


def _consensus(tones: list[str], genders: list[str]) -> tuple[str, str, float | None, float | None]:
    n = len(tones)
    if n == 0:
        return UNKNOWN, UNKNOWN, None, None
    # One label agrees with nothing: its agreement is not measurable (None), never 1.0.
    measurable = n >= 2
    nobody = sum(
        1 for t, g in zip(tones, genders, strict=True) if t == NOT_APPLICABLE or g == NOT_APPLICABLE
    )
    if 2 * nobody >= n:
        share = nobody / n if measurable else None
        return NOT_APPLICABLE, NOT_APPLICABLE, share, share
    person_t = [
        t
        for t, g in zip(tones, genders, strict=True)
        if t != NOT_APPLICABLE and g != NOT_APPLICABLE
    ]
    person_g = [
        g
        for t, g in zip(tones, genders, strict=True)
        if t != NOT_APPLICABLE and g != NOT_APPLICABLE
    ]
    numeric = [n for n in map(tone_number, person_t) if n is not None]
    tone, tone_agree = UNKNOWN, None
    if numeric and 2 * len(numeric) >= len(person_t):
        med = _tone_median(numeric)
        tone = str(med)
        tone_agree = sum(
            1 for n in map(tone_number, person_t) if n is not None and abs(n - med) <= 1
        ) / len(person_t)
    elif person_t:
        tone_agree = sum(1 for t in person_t if tone_number(t) is None) / len(person_t)
    gender, gender_agree = UNKNOWN, None
    if person_g:
        top, count = Counter(person_g).most_common(1)[0]
        gender = top if 2 * count > len(person_g) else UNKNOWN
        gender_agree = count / len(person_g)
    if not measurable:
        return tone, gender, None, None
    return tone, gender, tone_agree, gender_agree


def aggregate_labels(items: ArrayLike, skin_tones: ArrayLike, genders: ArrayLike) -> dict[str, Any]:
    """Per-item consensus labels and agreement, plus Krippendorff's alpha over items.

    Returns ``{"items": [ItemLabel dicts, sorted by item], "tone_alpha", "gender_alpha",
    "mean_tone_agreement", "mean_gender_agreement", "agreement_note"}``. Agreement needs two
    labels of one item: an item with one label has None agreement, the means cover items with
    two or more, and with none of those every statistic is None and ``agreement_note`` says
    "not measurable (one label per item)"; alphas are also None without variation.
    """
    it = np.asarray(items).astype(str)
    tones = np.asarray(skin_tones).astype(str)
    gens = np.asarray(genders).astype(str)
    if not it.shape == tones.shape == gens.shape:
        raise ValueError("items, skin tones and genders need one entry per label")
    by_item: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for i, t, g in zip(it, tones, gens, strict=True):
        by_item[i][0].append(t)
        by_item[i][1].append(g)
    rows = []
    for item in sorted(by_item):
        t_list, g_list = by_item[item]
        tone, gender, ta, ga = _consensus(t_list, g_list)
        rows.append(ItemLabel(item, tone, gender, len(t_list), ta, ga))
    return {
        "items": [r.as_dict() for r in rows],
        "tone_alpha": _alpha(by_item, 0, "interval"),
        "gender_alpha": _alpha(by_item, 1, "nominal"),
        "mean_tone_agreement": _mean([r.tone_agreement for r in rows]),
        "mean_gender_agreement": _mean([r.gender_agreement for r in rows]),
        "agreement_note": not_measurable_reason([r.labels for r in rows]),
    }


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _alpha(by_item: dict[str, tuple[list[str], list[str]]], which: int, level: str) -> float | None:
    """Krippendorff's alpha over the person labels (tone: numeric, interval; gender: nominal)."""
    width = max((len(v[which]) for v in by_item.values()), default=0)
    if width < 2:
        return None
    codes = {"woman": 0.0, "man": 1.0, "other": 2.0}
    table = np.full((width, len(by_item)), np.nan)
    for col, (tones, genders) in enumerate(by_item.values()):
        for row, (t, g) in enumerate(zip(tones, genders, strict=True)):
            if which == 0 and tone_number(t) is not None:
                table[row, col] = float(tone_number(t))  # type: ignore[arg-type]
            elif which == 1 and g in codes:
                table[row, col] = codes[g]
    try:
        value = krippendorff_alpha(table, level)  # type: ignore[arg-type]
    except (ValueError, ZeroDivisionError):
        return None
    return float(value) if np.isfinite(value) else None


@dataclass(frozen=True)
class LabelQC:
    annotator: str
    labels: int
    consensus_scored: int
    consensus_accuracy: float | None
    median_seconds: float | None
    longest_run: int
    flagged: bool
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def annotator_label_qc(
    items: ArrayLike,
    annotators: ArrayLike,
    skin_tones: ArrayLike,
    genders: ArrayLike,
    seconds: ArrayLike,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_items: int = DEFAULT_MIN_ITEMS,
    max_run: int = DEFAULT_MAX_RUN,
) -> list[LabelQC]:
    """QC rows per annotator (sorted) from one row per label in submission order."""
    it = np.asarray(items).astype(str)
    who = np.asarray(annotators).astype(str)
    tones = np.asarray(skin_tones).astype(str)
    gens = np.asarray(genders).astype(str)
    secs = np.asarray(seconds, dtype=np.float64)
    if not it.shape == who.shape == tones.shape == gens.shape == secs.shape:
        raise ValueError("items, annotators, labels and seconds need one entry per label")
    rows_of: dict[str, list[int]] = defaultdict(list)
    for k, i in enumerate(it):
        rows_of[i].append(k)
    out = []
    for name in sorted(set(who.tolist())):
        mine = np.flatnonzero(who == name)
        scored = correct = 0
        for k in mine.tolist():
            others = [j for j in rows_of[it[k]] if who[j] != name]
            if len(others) < 2:
                continue
            tone, gender, _, _ = _consensus([tones[j] for j in others], [gens[j] for j in others])
            scored += 1
            mine_n, consensus_n = tone_number(tones[k]), tone_number(tone)
            tone_ok = (
                tones[k] == tone
                if mine_n is None or consensus_n is None
                else abs(mine_n - consensus_n) <= 1
            )
            gender_ok = gender == UNKNOWN or gens[k] == gender
            correct += bool(tone_ok and gender_ok)
        accuracy = correct / scored if scored else None
        answers = np.unique(
            np.char.add(np.char.add(tones[mine], "|"), gens[mine]), return_inverse=True
        )[1]
        run = longest_run(np.asarray(answers, dtype=np.int64))
        flagged = accuracy is not None and scored >= min_items and accuracy < threshold
        warnings = []
        if flagged:
            warnings.append(
                f"agrees with the other annotators on {accuracy:.2f} of "
                f"{scored} items (below {threshold:.2f})"
            )
        elif scored < min_items:
            warnings.append(f"too few shared items to judge ({scored} of {min_items})")
        if run > max_run:
            warnings.append(f"straight-lining: {run} identical answers in a row")
        out.append(
            LabelQC(
                name,
                len(mine),
                scored,
                accuracy,
                float(np.median(secs[mine])) if mine.size else None,
                run,
                flagged,
                tuple(warnings),
            )
        )
    return out
