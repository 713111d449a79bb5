"""One run's fairness report: per-group means, intervals, gaps, Holm-adjusted p-values and flags.

Definitions (the fairness JSON in docs/contracts/reports.md is the output shape):
- Units are images with a person (attribute not ``not_applicable``) and a subject mask; the caller
  leaves out failed items and no-subject items. ``metrics[name][i]`` is image ``i``'s value;
  ``gated_rate`` is 1.0 when the confidence gate hid image ``i``'s subject, else 0.0, so its group
  mean is the share of the group's subject items the gate hid.
- Per attribute (skin-tone group, perceived gender, their intersection) and group: n, mean,
  stratified percentile bootstrap CI (images resampled within their group, one draw per attribute
  shared by all metrics), gap = group mean - mean of the other images with that attribute, with its
  CI from the same rounds, and Welch's p-value (pipelines.stats.groups).
- Holm's step-down correction runs over every eligible (attribute, group, metric) cell of the
  report: one family, so adding metrics or an intersection makes each flag harder, never easier.
- A cell is flagged when p_holm < alpha and the gap exceeds ``margin`` in the harmful direction:
  below the rest for higher-is-better metrics, above it for ``mae`` and ``gated_rate``.
- Groups smaller than ``min_group_size`` are listed with n and mean, marked ``too_small`` ("too
  small to judge"), with no interval, p-value or flag, and are not in the Holm family.
- ``summary`` (leaderboard-ready): per metric the worst eligible group (by mean, harmful direction)
  and the largest harmful gap with its CI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipelines.metrics.registry import fairness_metrics, label, lower_is_better, names
from pipelines.stats.bootstrap import rng_from, stack_columns
from pipelines.stats.groups import group_reports, holm_adjust, is_harmful

from .grouping import (
    ATTRIBUTES,
    DEFAULT_TONE_GROUPS,
    attribute_labels,
    display_group,
    format_tone_groups,
    group_order,
    parse_tone_groups,
)

#: Metrics of the fairness JSON, in order (the registry marks them).
METRICS = names(fairness_metrics())
#: Images of each flagged group shown in the page's strip.
WORST_IMAGES = 6


@dataclass(frozen=True)
class FairnessSettings:
    min_group_size: int = 30
    margin: float = 0.03
    alpha: float = 0.05
    rounds: int = 2000
    skin_tone_groups: str = DEFAULT_TONE_GROUPS
    level: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.min_group_size < 2:
            raise ValueError(f"min_group_size must be at least 2, got {self.min_group_size}")
        if not 0.0 <= self.margin < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {self.margin}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.rounds < 100:
            raise ValueError(f"rounds must be at least 100, got {self.rounds}")
        # Normalised so equal groupings written differently are one setting.
        object.__setattr__(
            self, "skin_tone_groups", format_tone_groups(parse_tone_groups(self.skin_tone_groups))
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Cell:
    attribute: str
    group: str
    metric: str
    gap: float
    p_value: float
    eligible: bool
    p_holm: float = math.nan
    flagged: bool = False
    entry: dict[str, Any] = field(default_factory=dict)


def _num(x: float | None, digits: int | None = 6) -> float | None:
    """JSON-safe float: NaN becomes None (strict JSON has no NaN); p-values are kept unrounded
    (``digits=None``) because Holm multiplies small ones."""
    if x is None or not math.isfinite(x):
        return None
    return float(x) if digits is None else round(float(x), digits)


def flag_text(
    attribute: str, group: str, metric: str, mean: float, ci: list[float | None], gap: float
) -> str:
    """``Monk 8-10: IoU 0.403 [0.35, 0.45], 0.16 below the other images``."""
    lo = "?" if ci[0] is None else f"{ci[0]:.2f}"
    hi = "?" if ci[1] is None else f"{ci[1]:.2f}"
    side = "below" if gap < 0 else "above"
    return (
        f"{display_group(attribute, group)}: {label(metric)} {mean:.3f} "
        f"[{lo}, {hi}], {abs(gap):.2f} {side} the other images"
    )


def fairness_report(
    metrics: Mapping[str, ArrayLike],
    skin_tone: ArrayLike,
    perceived_gender: ArrayLike,
    settings: FairnessSettings | None = None,
) -> dict[str, Any]:
    """The fairness JSON body (without run/dataset headers) for per-image ``metrics``.

    Returns ``{"settings", "overall", "groups", "flags", "summary"}``; each flag also carries
    ``worst``: indices (into the inputs) of the group's worst images for that metric.
    """
    cfg = settings or FairnessSettings()
    names = [m for m in METRICS if m in metrics] + [m for m in metrics if m not in METRICS]
    values = stack_columns(metrics, names)
    labels = attribute_labels(skin_tone, perceived_gender, parse_tone_groups(cfg.skin_tone_groups))
    if labels["skin_tone"].shape[0] != values.shape[0]:
        raise ValueError(
            f"{labels['skin_tone'].shape[0]} attribute rows for {values.shape[0]} images"
        )
    rng = rng_from(cfg.seed)
    lower = set(lower_is_better()) & set(names)
    groups_out: list[dict[str, Any]] = []
    cells: list[_Cell] = []
    members: dict[tuple[str, str], NDArray[np.int64]] = {}
    tone_groups = parse_tone_groups(cfg.skin_tone_groups)
    for attribute in ATTRIBUTES:
        lab = labels[attribute]
        keep = np.flatnonzero(np.array([x is not None for x in lab], dtype=bool))
        if keep.size == 0:
            continue
        sub = lab[keep].astype(str)
        reports = group_reports(
            {n: values[keep, k] for k, n in enumerate(names)},
            sub,
            min_group_size=cfg.min_group_size,
            alpha=cfg.alpha,
            margin=cfg.margin,
            rounds=cfg.rounds,
            level=cfg.level,
            seed=rng,
            lower_is_better=lower,
        )
        order = group_order(attribute, sorted(set(sub.tolist())), tone_groups)
        for group in order:
            members[(attribute, group)] = keep[sub == group]
            entry: dict[str, Any] = {"attribute": attribute, "group": group, "metrics": {}}
            for name in names:
                stat = next(g for g in reports[name].groups if g.group == group)
                entry["n"], entry["too_small"] = stat.n, stat.too_small
                cell = _Cell(
                    attribute,
                    group,
                    name,
                    stat.gap.estimate,
                    stat.p_value,
                    not stat.too_small and math.isfinite(stat.p_value),
                )
                cell.entry = {
                    "mean": _num(stat.mean.estimate),
                    "ci": [_num(stat.mean.low), _num(stat.mean.high)],
                    "gap": _num(stat.gap.estimate),
                    "gap_ci": [_num(stat.gap.low), _num(stat.gap.high)],
                    "p": _num(stat.p_value, None),
                }
                entry["metrics"][name] = cell.entry
                cells.append(cell)
            groups_out.append(entry)
    adjusted = holm_adjust([c.p_value if c.eligible else math.nan for c in cells])
    flags: list[dict[str, Any]] = []
    for cell, p_holm in zip(cells, adjusted, strict=True):
        cell.p_holm = float(p_holm)
        cell.flagged = bool(
            cell.eligible
            and p_holm < cfg.alpha
            and is_harmful(cell.gap, lower_is_better=cell.metric in lower, margin=cfg.margin)
        )
        cell.entry["p_holm"] = _num(cell.p_holm, None)
        cell.entry["flagged"] = cell.flagged
        if cell.flagged:
            idx = members[(cell.attribute, cell.group)]
            col = values[idx, names.index(cell.metric)]
            worst_first = np.argsort(-col if cell.metric in lower else col, kind="stable")
            flags.append(
                {
                    "attribute": cell.attribute,
                    "group": cell.group,
                    "metric": cell.metric,
                    "gap": cell.entry["gap"],
                    "text": flag_text(
                        cell.attribute,
                        cell.group,
                        cell.metric,
                        cell.entry["mean"],
                        cell.entry["ci"],
                        cell.gap,
                    ),
                    "worst": [int(i) for i in idx[worst_first[:WORST_IMAGES]]],
                }
            )
    return {
        "settings": {k: v for k, v in cfg.as_dict().items() if k not in {"level", "seed"}},
        "overall": {n: _num(float(values[:, k].mean())) for k, n in enumerate(names)},
        "n": int(values.shape[0]),
        "groups": groups_out,
        # groups that reached min_group_size: with none, nothing was judged (no test, no
        # interval), which pages must not present as "no flags"
        "judged_groups": sum(1 for g in groups_out if not g["too_small"]),
        "flags": flags,
        "summary": _summary(groups_out, names, lower),
    }


def _summary(groups: list[dict[str, Any]], names: list[str], lower: set[str]) -> dict[str, Any]:
    """Per metric: worst eligible group by mean, and the largest harmful gap with its CI."""
    out: dict[str, Any] = {}
    for name in names:
        sign = -1.0 if name in lower else 1.0
        eligible = [
            g for g in groups if not g["too_small"] and g["metrics"][name]["mean"] is not None
        ]
        with_gap = [g for g in eligible if g["metrics"][name]["gap"] is not None]
        worst = min(eligible, key=lambda g: sign * g["metrics"][name]["mean"], default=None)
        largest = min(with_gap, key=lambda g: sign * g["metrics"][name]["gap"], default=None)
        out[name] = {
            "worst_group": None
            if worst is None
            else {
                "attribute": worst["attribute"],
                "group": worst["group"],
                "mean": worst["metrics"][name]["mean"],
                "ci": worst["metrics"][name]["ci"],
            },
            "largest_gap": None
            if largest is None
            else {
                "attribute": largest["attribute"],
                "group": largest["group"],
                "gap": largest["metrics"][name]["gap"],
                "gap_ci": largest["metrics"][name]["gap_ci"],
                "flagged": largest["metrics"][name].get("flagged", False),
            },
        }
    return out
