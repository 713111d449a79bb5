"""Crowd fairness: does the crowd prefer a run less on some groups than on others?

Input: one row per vote between the focus run and the reference run on a rated item: the item,
the item's group (None = excluded, e.g. no person), and the outcome from the focus run's side:
``win``, ``loss``, ``tie`` or ``both_bad``.

Definitions:
- Win rate of a group = focus wins / all votes on the group's items (the convention of
  pipelines.stats.pairs: win + loss + tie + both_bad = 1); both-bad rate likewise.
- Intervals resample rated items within their group with all their votes (a ratio estimator per
  round: drawn wins / drawn votes); one draw per round is shared by win and both-bad rates.
- Agreement of an item = share of its pairs of votes that agree (items with at least two votes);
  per group its mean with a bootstrap interval, and Kruskal-Wallis across groups for "does
  agreement differ by group" (p-value; groups with fewer than two such items are left out).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import kruskal

from pipelines.stats.bootstrap import DEFAULT_LEVEL, Seed, percentile_interval, rng_from
from pipelines.stats.groups import stratified_bootstrap_means

from .report import _num

OUTCOMES = ("win", "loss", "tie", "both_bad")


def crowd_group_rates(
    items: ArrayLike,
    groups: ArrayLike,
    outcomes: ArrayLike,
    *,
    rounds: int = 2000,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """``{"groups": [{"group", "items", "votes", "win_rate", "win_ci", "both_bad_rate",
    "both_bad_ci", "agreement", "agreement_ci"}], "agreement_p", "agreement_differs"}``."""
    item_arr = np.asarray(items).astype(str)
    group_arr = np.asarray(groups, dtype=object)
    out_arr = np.asarray(outcomes).astype(str)
    if not item_arr.shape == group_arr.shape == out_arr.shape:
        raise ValueError("items, groups and outcomes need one entry per vote")
    bad = sorted(set(out_arr.tolist()) - set(OUTCOMES))
    if bad:
        raise ValueError(f"unknown outcome {bad[0]!r}; expected one of {OUTCOMES}")
    keep = np.array([g is not None for g in group_arr], dtype=bool)
    item_arr, group_arr, out_arr = item_arr[keep], group_arr[keep].astype(str), out_arr[keep]
    if item_arr.size == 0:
        return {"groups": [], "agreement_p": None, "agreement_differs": None}
    item_names, item_idx = np.unique(item_arr, return_inverse=True)
    # One group per item (an item's attributes are fixed): take it from the item's first vote.
    first = np.zeros(len(item_names), dtype=np.int64)
    first[item_idx[::-1]] = np.arange(len(item_idx))[::-1]
    item_group = group_arr[first]
    if (item_group[item_idx] != group_arr).any():
        raise ValueError("an item's votes name different groups")
    codes = np.array([OUTCOMES.index(o) for o in out_arr], dtype=np.int64)
    counts = np.zeros((len(item_names), len(OUTCOMES)))
    np.add.at(counts, (item_idx, codes), 1.0)
    votes = counts.sum(axis=1)
    # Observed agreement: agreeing ordered pairs / all ordered pairs (items with >= 2 votes).
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = (counts * (counts - 1)).sum(axis=1) / (votes * (votes - 1))
    group_names, inverse = np.unique(item_group, return_inverse=True)
    rng = rng_from(seed)
    per_item = np.stack([counts[:, 0], counts[:, 3], votes], axis=1)
    boot = stratified_bootstrap_means(
        per_item, inverse, rounds=rounds, seed=rng, n_groups=len(group_names)
    )
    win_b = percentile_interval(boot[:, :, 0] / boot[:, :, 2], level)
    bad_b = percentile_interval(boot[:, :, 1] / boot[:, :, 2], level)
    rows: list[dict[str, Any]] = []
    samples = []
    for g, group in enumerate(group_names):
        sel = inverse == g
        v = votes[sel].sum()
        agree = agreement[sel & (votes >= 2)]
        if agree.size:
            agree_boot = stratified_bootstrap_means(
                agree, np.zeros(agree.size, dtype=np.int64), rounds=rounds, seed=rng
            )[:, 0, 0]
            agree_ci = percentile_interval(agree_boot, level)
        else:
            agree_ci = np.array([np.nan, np.nan])
        if agree.size >= 2:
            samples.append(agree)
        rows.append(
            {
                "group": str(group),
                "items": int(sel.sum()),
                "votes": int(v),
                "win_rate": _num(counts[sel, 0].sum() / v),
                "win_ci": [_num(win_b[0, g]), _num(win_b[1, g])],
                "both_bad_rate": _num(counts[sel, 3].sum() / v),
                "both_bad_ci": [_num(bad_b[0, g]), _num(bad_b[1, g])],
                "agreement": _num(float(agree.mean())) if agree.size else None,
                "agreement_ci": [_num(agree_ci[0]), _num(agree_ci[1])],
            }
        )
    p_value = None
    if len(samples) >= 2 and np.ptp(np.concatenate(samples)) > 0:
        p_value = float(kruskal(*samples).pvalue)
    return {
        "groups": rows,
        "agreement_p": _num(p_value, None),
        "agreement_differs": None if p_value is None else bool(p_value < alpha),
    }
