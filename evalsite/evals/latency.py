"""A run's stored latency summary read through the tail rule of `pipelines.stats.latency`.

Every place that shows or gates latency (run page, compare page, leaderboard rows, release
reports, exports) reads it through `pipelines.payloads.run_summary.Latency`, so "p99" is never
printed for fewer than 100 measurements. No queries: the summary is stored on the run by
`evals.services.aggregate` (`pipelines.stats.latency.latency_summary`).
"""

from __future__ import annotations

from typing import Any

from pipelines.payloads.run_summary import Latency


def _latency(summary: dict[str, Any]) -> Latency:
    return Latency.from_dict((summary or {}).get("latency") or {})


def latency_tables(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One table per device: n, the tail statistic's name and a row per measured stage."""
    return _latency(summary).tables()


def total_latency(summary: dict[str, Any]) -> dict[str, Any] | None:
    """Whole-pipeline latency on the device with the most measurements: the keys of
    `pipelines.stats.latency.latency_stats` plus ``device``; None when nothing was measured."""
    total = _latency(summary).total()
    return total.to_dict() if total is not None else None
