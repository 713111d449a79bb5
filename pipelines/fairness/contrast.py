"""Gaps stratified by subject/background contrast (the synthetic-people generator records it).

Why: the generator draws every Monk tone on the same backgrounds, so a dark tone on a dark
background has low contrast and is hard for any segmenter. A gap that disappears within contrast
strata was caused by the rendering; one that stays within strata is the model's.

Definitions:
- Strata are contrast quantile bins over the included images (``strata`` bins, default tertiles;
  ties at an edge go to the lower bin, as ``numpy.digitize`` with ``right=True``).
- Within a stratum, a group's gap = its mean minus the mean of the stratum's other images.
- The contrast-adjusted gap of a group = the average of its within-stratum gaps weighted by the
  group's image count in each stratum (strata without other images are skipped); its interval
  comes from a bootstrap that resamples images within each (group, stratum) cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from pipelines.stats.bootstrap import DEFAULT_LEVEL, Seed, percentile_interval, stack_columns
from pipelines.stats.groups import stratified_bootstrap_means

from .report import _num


def contrast_stratified_gaps(
    metrics: Mapping[str, ArrayLike],
    labels: ArrayLike,
    contrast: ArrayLike,
    *,
    strata: int = 3,
    rounds: int = 2000,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
) -> dict[str, Any]:
    """``{"edges", "strata": [{"low", "high", "groups": [...]}], "adjusted": [...]}``.

    ``labels[i]`` is image ``i``'s group or None (excluded); ``contrast[i]`` a finite number.
    """
    names = list(metrics)
    values = stack_columns(metrics, names)
    lab = np.asarray(labels, dtype=object)
    con = np.asarray(contrast, dtype=np.float64)
    if not lab.shape == con.shape == (values.shape[0],):
        raise ValueError("metrics, labels and contrast need one entry per image")
    keep = np.flatnonzero(np.array([x is not None for x in lab], dtype=bool) & np.isfinite(con))
    if keep.size == 0:
        return {"edges": [], "strata": [], "adjusted": []}
    values, con = values[keep], con[keep]
    groups = lab[keep].astype(str)
    edges = np.quantile(con, np.linspace(0, 1, strata + 1))
    stratum = np.clip(np.digitize(con, edges[1:-1], right=True), 0, strata - 1)
    group_names, g_idx = np.unique(groups, return_inverse=True)
    n_groups = len(group_names)
    cell = g_idx * strata + stratum
    n_cells = n_groups * strata
    sizes = np.bincount(cell, minlength=n_cells).astype(np.float64).reshape(n_groups, strata)
    boot = stratified_bootstrap_means(values, cell, rounds=rounds, seed=seed, n_groups=n_cells)
    boot = boot.reshape(rounds, n_groups, strata, len(names))
    est = np.full((n_groups, strata, len(names)), np.nan)
    for g in range(n_groups):
        for s in range(strata):
            sel = (g_idx == g) & (stratum == s)
            if sel.any():
                est[g, s] = values[sel].mean(axis=0)

    def gaps(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Within-stratum gaps (..., groups, strata, metrics) and their weighted average."""
        filled = np.nan_to_num(means)
        w = sizes[..., None]
        stratum_sum = (filled * w).sum(axis=-3, keepdims=True)
        rest_n = sizes.sum(axis=0)[None, :, None] - w
        with np.errstate(invalid="ignore", divide="ignore"):
            rest_mean = (stratum_sum - filled * w) / rest_n
            within = np.where((w > 0) & (rest_n > 0), filled - rest_mean, np.nan)
            weights = np.where(np.isnan(within), 0.0, w)
            adjusted = np.nansum(within * weights, axis=-2) / weights.sum(axis=-2)
        return within, adjusted

    within, adjusted = gaps(est)
    _, boot_adjusted = gaps(boot)
    bounds = percentile_interval(boot_adjusted, level)
    strata_out = []
    for s in range(strata):
        rows = []
        for g, group in enumerate(group_names):
            if sizes[g, s] == 0:
                continue
            rows.append(
                {
                    "group": str(group),
                    "n": int(sizes[g, s]),
                    "metrics": {
                        n: {"mean": _num(est[g, s, k]), "gap": _num(within[g, s, k])}
                        for k, n in enumerate(names)
                    },
                }
            )
        strata_out.append({"low": _num(edges[s]), "high": _num(edges[s + 1]), "groups": rows})
    adjusted_out = []
    for g, group in enumerate(group_names):
        raw_rest = values[g_idx != g]
        adjusted_out.append(
            {
                "group": str(group),
                "n": int(sizes[g].sum()),
                "metrics": {
                    n: {
                        "raw_gap": _num(values[g_idx == g, k].mean() - raw_rest[:, k].mean())
                        if raw_rest.size
                        else None,
                        "adjusted_gap": _num(adjusted[g, k]),
                        "adjusted_ci": [_num(bounds[0, g, k]), _num(bounds[1, g, k])],
                    }
                    for k, n in enumerate(names)
                },
            }
        )
    return {"edges": [_num(e) for e in edges], "strata": strata_out, "adjusted": adjusted_out}
