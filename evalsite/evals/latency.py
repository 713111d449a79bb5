"""A run's stored latency summary read through the tail rule of `pipelines.stats.latency`.

Every place that shows or gates latency (run page, compare page, leaderboard rows, release
reports, exports) reads it here, so "p99" is never printed for fewer than 100 measurements.
No queries: the summary is stored on the run by `evals.services.aggregate.latency_summary`.
"""

from __future__ import annotations

from typing import Any

from pipelines.stats.latency import stage_view, tail_name


def latency_tables(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One table per device: n, the tail statistic's name and a row per measured stage."""
    devices = ((summary or {}).get("latency") or {}).get("devices") or {}
    tables = []
    for device, d in devices.items():
        n = int(d.get("n") or 0)
        rows = [
            {"stage": stage, **stage_view(s, n)} for stage, s in (d.get("stages") or {}).items()
        ]
        tables.append({"device": device, "n": n, "tail": tail_name(n), "rows": rows})
    return tables


def total_latency(summary: dict[str, Any]) -> dict[str, Any] | None:
    """Whole-pipeline latency on the device with the most measurements: the keys of
    `pipelines.stats.latency.latency_stats` plus ``device``; None when nothing was measured."""
    devices = ((summary or {}).get("latency") or {}).get("devices") or {}
    if not devices:
        return None
    name, best = max(devices.items(), key=lambda kv: kv[1].get("n", 0))
    total = (best.get("stages") or {}).get("total")
    if not total:
        return None
    return {"device": name, **stage_view(total, best.get("n"))}
