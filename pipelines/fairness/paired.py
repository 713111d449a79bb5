"""Paired per-group deltas of two runs on the same images (compare page, release report).

Definitions:
- ``baseline[m][i]`` and ``candidate[m][i]`` belong to image ``i`` (same order, same images);
  ``labels[i]`` is image ``i``'s group or None (excluded, e.g. ``not_applicable``).
- Per group: candidate mean, baseline mean and delta = candidate - baseline, each with a
  percentile interval from the paired image bootstrap: each round resamples the images of every
  group within the group, and one draw is shared by both runs and by all metrics, so two identical
  runs give delta 0 with interval [0, 0] exactly.
- ``delta_gap`` = the group's delta minus the delta of the other images (did the candidate widen
  or close the group's gap?), with its interval from the same rounds.
- Groups below ``min_group_size`` get means and deltas but no intervals (``too_small``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from pipelines.stats.bootstrap import (
    DEFAULT_LEVEL,
    Seed,
    paired_columns,
    percentile_interval,
    rng_from,
)
from pipelines.stats.groups import stratified_bootstrap_means

from .grouping import ATTRIBUTES, attribute_labels, group_order, parse_tone_groups
from .report import _num


def paired_group_deltas(
    baseline: Mapping[str, ArrayLike],
    candidate: Mapping[str, ArrayLike],
    labels: Sequence[str | None] | ArrayLike,
    *,
    min_group_size: int = 30,
    rounds: int = 2000,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
) -> list[dict[str, Any]]:
    """Per group (sorted by label): ``{"group", "n", "too_small", "metrics": {m: {...}}}``.

    Each metric holds ``candidate``, ``baseline``, ``delta``, ``ci`` (of the delta),
    ``delta_gap`` and ``delta_gap_ci`` (None where undefined). Raises ValueError when the runs
    cover different metrics or image counts.
    """
    names, base, cand = paired_columns(baseline, candidate)
    lab = np.asarray(labels, dtype=object)
    if lab.shape != (base.shape[0],):
        raise ValueError(f"{lab.shape[0]} group labels for {base.shape[0]} images")
    keep = np.flatnonzero(np.array([x is not None for x in lab], dtype=bool))
    if keep.size == 0:
        return []
    group_names, inverse = np.unique(lab[keep].astype(str), return_inverse=True)
    m = len(names)
    # Columns: baseline | candidate | per-image difference (exact zeros for identical runs).
    stacked = np.hstack([base[keep], cand[keep], cand[keep] - base[keep]])
    sizes = np.bincount(inverse, minlength=len(group_names)).astype(np.float64)
    boot = stratified_bootstrap_means(
        stacked, inverse, rounds=rounds, seed=seed, n_groups=len(group_names)
    )
    est = np.stack([stacked[inverse == g].mean(axis=0) for g in range(len(group_names))])
    total = sizes.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        rest = total - sizes
        sums = (boot * sizes[None, :, None]).sum(axis=1, keepdims=True)
        boot_rest = (sums - boot * sizes[None, :, None]) / rest[None, :, None]
        est_sums = (est * sizes[:, None]).sum(axis=0, keepdims=True)
        est_rest = (est_sums - est * sizes[:, None]) / rest[:, None]
    bounds = percentile_interval(boot, level)
    gap_bounds = percentile_interval(boot - boot_rest, level)
    out: list[dict[str, Any]] = []
    for g, group in enumerate(group_names):
        ok = sizes[g] >= min_group_size
        has_rest = rest[g] > 0
        metrics: dict[str, Any] = {}
        for k, name in enumerate(names):
            d = 2 * m + k

            def ci(lo: float, hi: float, show: bool) -> list[float | None]:
                return [_num(lo), _num(hi)] if show else [None, None]

            metrics[name] = {
                "baseline": _num(est[g, k]),
                "candidate": _num(est[g, m + k]),
                "delta": _num(est[g, d]),
                "ci": ci(bounds[0, g, d], bounds[1, g, d], bool(ok)),
                "delta_gap": _num(est[g, d] - est_rest[g, d]) if has_rest else None,
                "delta_gap_ci": ci(gap_bounds[0, g, d], gap_bounds[1, g, d], bool(ok and has_rest)),
            }
        out.append(
            {"group": str(group), "n": int(sizes[g]), "too_small": not bool(ok), "metrics": metrics}
        )
    return out


def paired_attribute_deltas(
    baseline: Mapping[str, ArrayLike],
    candidate: Mapping[str, ArrayLike],
    skin_tone: ArrayLike,
    perceived_gender: ArrayLike,
    *,
    skin_tone_groups: str = "1-3,4-7,8-10",
    min_group_size: int = 30,
    rounds: int = 2000,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
) -> list[dict[str, Any]]:
    """:func:`paired_group_deltas` for every fairness attribute, in the fairness JSON's order.

    Rows are ``{"attribute", "group", "n", "too_small", "metrics"}``; one generator is shared, so
    the result depends only on ``seed``.
    """
    groups = parse_tone_groups(skin_tone_groups)
    labels = attribute_labels(skin_tone, perceived_gender, groups)
    rng = rng_from(seed)
    rows: list[dict[str, Any]] = []
    for attribute in ATTRIBUTES:
        result = {
            r["group"]: r
            for r in paired_group_deltas(
                baseline,
                candidate,
                labels[attribute],
                min_group_size=min_group_size,
                rounds=rounds,
                level=level,
                seed=rng,
            )
        }
        for group in group_order(attribute, list(result), groups):
            rows.append({"attribute": attribute, **result[group]})
    return rows
