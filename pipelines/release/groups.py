"""Per-group paired deltas with release flags (fairness section and gates of a release report).

The numbers — each group's mean for both runs, the paired delta (candidate - baseline) with its
bootstrap interval and `delta_gap` (the group's delta minus the other images' delta) — come from
`pipelines.fairness.paired_group_deltas`, the one implementation the fairness pages use too.
This module adds what a release decision needs on top:

- *flagged*: the candidate's change on the group is significantly worse than on the other
  images: Welch's two-sided t-test of the group's per-image deltas against the rest's,
  Holm-adjusted over the eligible groups of the attribute, adjusted p < alpha, and the group's
  oriented `delta_gap` below -margin;
- `p_noninferior`: one-sided one-sample t-test of H0 "the group's oriented mean delta <= -margin"
  (analytic, so its resolution does not depend on bootstrap rounds; the gate takes the largest over
  the eligible groups — an intersection-union test — into Holm across the report's gates).
Groups smaller than `min_group_size` are listed without interval, test or flag.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import ttest_1samp, ttest_ind

from pipelines.fairness import paired_group_deltas
from pipelines.stats.bootstrap import DEFAULT_LEVEL, DEFAULT_ROUNDS
from pipelines.stats.groups import holm_adjust


@dataclass(frozen=True)
class GroupDelta:
    group: str
    n: int
    baseline: float
    candidate: float
    delta: float
    low: float | None
    high: float | None
    delta_vs_rest: float | None
    p_value: float | None
    p_holm: float | None
    flagged: bool
    too_small: bool
    p_noninferior: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "n": self.n,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "delta": self.delta,
            "ci": None if self.low is None else [self.low, self.high],
            "delta_vs_rest": self.delta_vs_rest,
            "p_value": self.p_value,
            "p_holm": self.p_holm,
            "flagged": self.flagged,
            "too_small": self.too_small,
            "p_noninferior": self.p_noninferior,
        }


def _quiet(fn: Any, *args: Any, **kwargs: Any) -> float:
    with warnings.catch_warnings():  # near-constant deltas: a precision warning only
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(fn(*args, **kwargs).pvalue)


def _welch(inside: np.ndarray, rest: np.ndarray) -> float:
    if np.ptp(inside) == 0 and np.ptp(rest) == 0:
        return 1.0 if inside[0] == rest[0] else 0.0
    return _quiet(ttest_ind, inside, rest, equal_var=False)


def _noninferior(oriented: np.ndarray, margin: float) -> float:
    if np.ptp(oriented) == 0:
        return 0.0 if oriented[0] > -margin else 1.0
    return _quiet(ttest_1samp, oriented, -margin, alternative="greater")


def group_deltas_with_flags(
    baseline: ArrayLike, candidate: ArrayLike, labels: ArrayLike, *, metric: str = "iou",
    min_group_size: int = 30, alpha: float = 0.05, margin: float = 0.0,
    lower_is_better: bool = False, rounds: int = DEFAULT_ROUNDS, level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> list[GroupDelta]:  # fmt: skip
    """Per-group paired deltas of one metric; `labels[i]` is image `i`'s group or None."""
    base = np.asarray(baseline, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    lab = np.asarray(labels, dtype=object)
    if not (base.shape == cand.shape == lab.shape) or base.ndim != 1:
        raise ValueError("baseline, candidate and labels need one entry per image")
    rows = paired_group_deltas({metric: base}, {metric: cand}, lab,
                               min_group_size=min_group_size, rounds=rounds, level=level,
                               seed=seed)  # fmt: skip
    keep = np.array([x is not None for x in lab], dtype=bool)
    diff = (cand - base)[keep]
    names = lab[keep].astype(str)
    sign = -1.0 if lower_is_better else 1.0
    p_values = np.full(len(rows), np.nan)
    for k, row in enumerate(rows):
        inside, rest = diff[names == row["group"]], diff[names != row["group"]]
        if not row["too_small"] and rest.size >= 2 and inside.size >= 2:
            p_values[k] = _welch(inside, rest)
    adjusted = holm_adjust(p_values)
    out = []
    for k, row in enumerate(rows):
        m = row["metrics"][metric]
        ok = not row["too_small"]
        gap = m["delta_gap"]
        flagged = bool(ok and not np.isnan(adjusted[k]) and adjusted[k] < alpha
                       and gap is not None and sign * gap < -margin)  # fmt: skip
        oriented = sign * diff[names == row["group"]]
        out.append(GroupDelta(
            group=row["group"], n=row["n"], baseline=m["baseline"], candidate=m["candidate"],
            delta=m["delta"], low=m["ci"][0], high=m["ci"][1], delta_vs_rest=gap,
            p_value=None if np.isnan(p_values[k]) else float(p_values[k]),
            p_holm=None if np.isnan(adjusted[k]) else float(adjusted[k]), flagged=flagged,
            too_small=not ok, p_noninferior=_noninferior(oriented, margin) if ok else None,
        ))  # fmt: skip
    return out
