"""Per-tone summaries of background luminance and contrast, read back from a manifest.

Why: the claim "a fairness gap measures the model, not the generator" is checkable. Background
luminance must have the same distribution for every Monk tone (the generator controls it);
subject/background contrast legitimately differs by tone and is summarised so reports can show it.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .monk import SKIN_TONES


@dataclass(frozen=True)
class ToneSummary:
    """Means (and the bg-luminance standard deviation) over the items of one Monk tone."""

    tone: str
    n: int
    bg_luminance_mean: float
    bg_luminance_std: float
    contrast_mean: float
    contrast_ratio_mean: float
    michelson_mean: float


def _rows(manifest: Path | str | Iterable[Mapping[str, str]]) -> list[Mapping[str, str]]:
    if isinstance(manifest, (str, Path)):
        with Path(manifest).open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    return list(manifest)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _std(xs: list[float]) -> float:
    if len(xs) < 2:
        return 0.0 if xs else math.nan
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def contrast_by_tone(
    manifest: Path | str | Iterable[Mapping[str, str]],
) -> dict[str, ToneSummary]:
    """Summaries keyed by tone ``"1"``…``"10"`` for tones present; other labels are ignored."""
    groups: dict[str, list[Mapping[str, str]]] = {}
    for row in _rows(manifest):
        if row.get("skin_tone") in SKIN_TONES:
            groups.setdefault(row["skin_tone"], []).append(row)

    def col(rows: list[Mapping[str, str]], name: str) -> list[float]:
        return [float(r[name]) for r in rows if r.get(name) not in (None, "")]

    out = {}
    for tone in SKIN_TONES:
        rows = groups.get(tone)
        if not rows:
            continue
        bg = col(rows, "bg_luminance")
        out[tone] = ToneSummary(
            tone=tone,
            n=len(rows),
            bg_luminance_mean=_mean(bg),
            bg_luminance_std=_std(bg),
            contrast_mean=_mean(col(rows, "contrast")),
            contrast_ratio_mean=_mean(col(rows, "contrast_ratio")),
            michelson_mean=_mean(col(rows, "michelson")),
        )
    return out


def bg_luminance_spread(summary: Mapping[str, ToneSummary]) -> float:
    """Largest difference between two tones' mean background L* (0 = perfectly balanced)."""
    means = [s.bg_luminance_mean for s in summary.values() if not math.isnan(s.bg_luminance_mean)]
    return max(means) - min(means) if means else 0.0
