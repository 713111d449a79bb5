"""Leaderboard uncertainty, computed by the refresh job from the runs' per-image values.

Each metric cell is the mean over the run's scored images with its percentile bootstrap interval;
each version gets a rank interval on the primary metric among the versions of its set version
(the statistics and the rank rule: pipelines.stats.ranking). Versions of one set version ran on
the same images, so they are resampled together: one draw of image indices per round serves every
cell of the runs that scored the shared images (the usual case) and their ranks. A run that scored
images another one did not still gets its cells over all its own images (its own draw); the ranks
use the shared images only. Seeded, 1000 rounds: a rebuild gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from evalsite.evals.models import ItemResult, ResultStatus
from evalsite.releases.models import LeaderboardRow
from pipelines.metrics.registry import BY_NAME, PRIMARY, leaderboard_metrics
from pipelines.stats.bootstrap import DEFAULT_LEVEL, Interval, bootstrap_means
from pipelines.stats.ranking import rank_intervals

METRICS = leaderboard_metrics()
ROUNDS = 1000
SEED = 0
PerImage = dict[int, dict[int, tuple[float, ...]]]


def per_image_values(run_ids: list[int]) -> PerImage:
    """run id -> item id -> the leaderboard metrics' per-image values, for the images where every
    one of them was scored (one query)."""
    columns = [m.column or m.name for m in METRICS]
    out: PerImage = {}
    rows = ItemResult.objects.filter(run_id__in=run_ids, status=ResultStatus.OK).values_list(
        "run_id", "item_id", *columns
    )
    for run_id, item_id, *values in rows.iterator(chunk_size=5000):
        if all(v is not None for v in values):
            out.setdefault(run_id, {})[item_id] = tuple(float(v) for v in values)
    return out


def _apply(row: LeaderboardRow, n: int, found: dict[str, Interval]) -> None:
    row.intervals = {
        "n": n, "level": DEFAULT_LEVEL, "rounds": ROUNDS,
        "metrics": {name: [iv.low, iv.high] for name, iv in found.items()},
    }  # fmt: skip
    for name, iv in found.items():  # the cell is the mean its interval is about
        setattr(row, name, iv.estimate)


def _cells(rows: list[LeaderboardRow], values: PerImage, items: list[int]) -> None:
    """Cells of `rows` over `items`, every row and metric from one shared draw of images."""
    columns: dict[str, np.ndarray] = {}
    for row in rows:
        matrix = np.array([values[row.run_id][i] for i in items], dtype=np.float64)
        for k, m in enumerate(METRICS):
            columns[f"{row.run_id}:{m.name}"] = matrix[:, k]
    found = bootstrap_means(columns, rounds=ROUNDS, seed=SEED)
    for row in rows:
        _apply(row, len(items), {m.name: found[f"{row.run_id}:{m.name}"] for m in METRICS})


def leaderboard_uncertainty(rows: list[LeaderboardRow], values: PerImage) -> None:
    """Fill the rows' intervals, per-image-mean cells and rank intervals (rows without per-image
    values keep their summary numbers and get none)."""
    by_set: dict[int, list[LeaderboardRow]] = {}
    for row in rows:
        if values.get(row.run_id):
            by_set.setdefault(row.dataset_version_id, []).append(row)
    primary = [m.name for m in METRICS].index(PRIMARY)
    for members in by_set.values():
        shared = sorted(set.intersection(*(set(values[r.run_id]) for r in members)))
        together = [r for r in members if shared and len(values[r.run_id]) == len(shared)]
        if together:
            _cells(together, values, shared)
        for row in members:
            if row not in together:
                _cells([row], values, sorted(values[row.run_id]))
        if not shared:
            continue
        matrix = np.array(
            [[values[r.run_id][i][primary] for r in members] for i in shared], dtype=np.float64
        )
        ranks = rank_intervals(matrix, lower_is_better=BY_NAME[PRIMARY].lower_is_better,
                               rounds=ROUNDS, seed=SEED)  # fmt: skip
        for row, rank in zip(members, ranks, strict=True):
            row.rank, row.rank_low, row.rank_high, row.rank_items = (
                rank.rank, rank.low, rank.high, rank.n
            )  # fmt: skip


def summary_values(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The leaderboard columns from a run's stored summary (before per-image means replace them)."""
    return {m.name: metrics.get(m.name) for m in METRICS}
