"""Per-group paired deltas (fairness section of a release report).

For each group of one attribute (e.g. Monk skin-tone groups): the group's mean metric for both runs
and the paired delta (candidate - baseline) over the group's images with a percentile bootstrap
interval (images resampled within the group; one draw per group shared by both runs).

A group is *flagged* when the candidate's change on it is significantly worse than on the other
images: Welch's two-sided t-test of the group's per-image deltas against the rest's, Holm-adjusted
over the eligible groups of the attribute, adjusted p < alpha, and the group's oriented delta lies
more than `margin` below the rest's. Groups smaller than `min_group_size` are listed with their
means but no interval, p-value or flag, and never become the worst group.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import ttest_ind

from pipelines.stats.bootstrap import DEFAULT_LEVEL, DEFAULT_ROUNDS, FloatArray, percentile_interval
from pipelines.stats.groups import holm_adjust

from .deltas import one_sided_p, paired_samples


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
    samples: FloatArray | None = field(default=None, repr=False, compare=False)

    def p_noninferior(self, margin: float, *, lower_is_better: bool = False) -> float:
        if self.samples is None:
            return float("nan")
        sign = -1.0 if lower_is_better else 1.0
        return one_sided_p(sign * self.samples, -margin)

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "n": self.n, "candidate": self.candidate,
                "baseline": self.baseline, "delta": self.delta,
                "ci": None if self.low is None else [self.low, self.high],
                "delta_vs_rest": self.delta_vs_rest, "p_value": self.p_value,
                "p_holm": self.p_holm, "flagged": self.flagged, "too_small": self.too_small}


def _none_if_nan(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def paired_group_deltas(baseline: ArrayLike, candidate: ArrayLike, groups: ArrayLike, *,
                        min_group_size: int = 30, alpha: float = 0.05, margin: float = 0.0,
                        lower_is_better: bool = False, rounds: int = DEFAULT_ROUNDS,
                        level: float = DEFAULT_LEVEL, seed: int = 0) -> list[GroupDelta]:
    """Per-group paired deltas of one metric; `groups[i]` labels image `i` (ASCII labels)."""
    base = np.asarray(baseline, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    labels = np.asarray(groups).astype(str)
    if not (base.shape == cand.shape == labels.shape) or base.ndim != 1:
        raise ValueError("baseline, candidate and groups need one entry per image")
    diff = cand - base
    sign = -1.0 if lower_is_better else 1.0
    names, inverse = np.unique(labels, return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(names))
    eligible = sizes >= min_group_size
    p_values = np.full(len(names), np.nan)
    vs_rest = np.full(len(names), np.nan)
    for g in range(len(names)):
        inside, rest = diff[inverse == g], diff[inverse != g]
        if rest.size:
            vs_rest[g] = inside.mean() - rest.mean()
        if eligible[g] and rest.size >= 2 and inside.size >= 2:
            if np.ptp(inside) == 0 and np.ptp(rest) == 0:
                p_values[g] = 1.0 if inside[0] == rest[0] else 0.0
            else:
                with warnings.catch_warnings():  # near-constant deltas: precision warning only
                    warnings.simplefilter("ignore", RuntimeWarning)
                    p_values[g] = float(ttest_ind(inside, rest, equal_var=False).pvalue)
    adjusted = holm_adjust(p_values)
    out = []
    for g, name in enumerate(names):
        sel = inverse == g
        ok = bool(eligible[g])
        low = high = None
        samples = None
        if ok:
            boot = paired_samples(base[sel, None], cand[sel, None], rounds=rounds,
                                  seed=seed + g)
            samples = boot[:, 2].copy()
            lo, hi = percentile_interval(samples, level)
            low, high = float(lo), float(hi)
        flagged = bool(ok and not np.isnan(adjusted[g]) and adjusted[g] < alpha
                       and sign * vs_rest[g] < -margin)
        out.append(GroupDelta(
            group=str(name), n=int(sizes[g]), baseline=float(base[sel].mean()),
            candidate=float(cand[sel].mean()), delta=float(diff[sel].mean()), low=low, high=high,
            delta_vs_rest=_none_if_nan(vs_rest[g]), p_value=_none_if_nan(p_values[g]),
            p_holm=_none_if_nan(adjusted[g]), flagged=flagged, too_small=not ok,
            samples=samples))
    return out
