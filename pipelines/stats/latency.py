"""Latency summaries: n, p50 and an honest tail statistic.

Why the tail switches: the 99th percentile of fewer than 100 measurements is an interpolation
between the two largest values (with numpy's linear rule, p99 of 30 images sits 71 % of the way
from the second-largest to the largest), so calling it "p99" promises a tail the data cannot show.
Below ``TAIL_MIN_N`` measurements the tail statistic is the maximum and is labelled ``max``; from
``TAIL_MIN_N`` on it is the p99 (linear interpolation, numpy's default). ``p99`` is None below
``TAIL_MIN_N`` so no reader can take a fake p99 for a real one; ``max`` is always given.

One reading of stored summaries (`stage_view`) serves every page, gate and export, including
summaries stored before ``max`` and ``tail`` were recorded: there, below ``TAIL_MIN_N`` the stored
"p99" is dropped and the tail is unknown (None, labelled ``max``) rather than shown as a p99.

A run's latency is stored by `latency_summary` when the run is finalised.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

#: Fewest measurements whose 99th percentile is a measured tail rather than the largest value.
TAIL_MIN_N = 100
P99, MAX = "p99", "max"
#: Stages of an evaluated item's latency record (ms each), in the order pages show them.
LATENCY_STAGES = ("preprocess", "model", "postprocess", "total")


def tail_name(n: int) -> str:
    """``p99`` when ``n >= TAIL_MIN_N`` measurements, else ``max``."""
    return P99 if n >= TAIL_MIN_N else MAX


def latency_stats(values: ArrayLike) -> dict[str, Any]:
    """``{"n", "p50", "p90", "p99", "max", "mean", "tail", "tail_ms"}`` of one stage (ms).

    ``tail`` names the tail statistic (``p99`` or ``max``) and ``tail_ms`` holds its value;
    ``p99`` is None below ``TAIL_MIN_N`` values. Empty input gives n 0 and None everywhere.
    Values must be finite (a missing measurement is left out by the caller, not passed as NaN).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    n = int(v.size)
    if n == 0:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None,
                "tail": MAX, "tail_ms": None}  # fmt: skip
    if not np.all(np.isfinite(v)):
        raise ValueError("latency values must be finite (leave missing measurements out)")
    p50, p90, p99 = (float(x) for x in np.percentile(v, (50, 90, 99)))
    tail = tail_name(n)
    top = float(v.max())
    return {
        "n": n,
        "p50": p50,
        "p90": p90,
        "p99": p99 if tail == P99 else None,
        "max": top,
        "mean": float(v.mean()),
        "tail": tail,
        "tail_ms": p99 if tail == P99 else top,
    }


def stage_view(stage: Mapping[str, Any] | None, n: int | None) -> dict[str, Any]:
    """A stored stage summary read through the tail rule (old summaries included).

    ``stage`` is what `latency_stats` stored (or an older ``{p50, p90, p99, mean}``); ``n`` the
    number of measurements behind it. Returns the keys of `latency_stats`.
    """
    stage = stage or {}
    count = int(n if n is not None else stage.get("n") or 0)
    tail = tail_name(count)
    p99 = stage.get("p99") if tail == P99 else None
    top = stage.get("max")
    return {
        "n": count,
        "p50": stage.get("p50"),
        "p90": stage.get("p90"),
        "p99": p99,
        "max": top,
        "mean": stage.get("mean"),
        "tail": tail,
        "tail_ms": p99 if tail == P99 else top,
    }


def tail_text(view: Mapping[str, Any]) -> str:
    """``p99 12.3 ms (n=250)`` or ``max 45.0 ms (n=30; p99 needs 100)`` for gates and CLIs."""
    n = view.get("n") or 0
    value = view.get("tail_ms")
    shown = "unknown" if value is None else f"{value:.1f} ms"
    if view.get("tail") == P99:
        return f"p99 {shown} (n={n})"
    return f"max {shown} (n={n}; p99 needs {TAIL_MIN_N})"


def latency_summary(records: Iterable[Mapping[str, Any] | None], warmups: int) -> dict[str, Any]:
    """A run's stored latency: `latency_stats` per stage, per device, and the warm-ups excluded.

    ``records`` holds each item's latency record (``{"device", <stage>: ms, …}``); warm-up
    inferences are never among them. Items without one (an imported run without a latency CSV)
    are left out, and so is a stage no item measured (a device CSV with only `image,ms`): "not
    measured", never zeros.
    """
    by_device: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        if record:
            by_device[record.get("device") or "unknown"].append(record)
    out: dict[str, Any] = {"warmup_excluded": warmups, "devices": {}}
    for device, rows in by_device.items():
        stages = {}
        for stage in LATENCY_STAGES:
            if not any(stage in row for row in rows):
                continue
            stages[stage] = latency_stats([float(row.get(stage, 0.0)) for row in rows])
        out["devices"][device] = {"n": len(rows), "stages": stages}
    return out
