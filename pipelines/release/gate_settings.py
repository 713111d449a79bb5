"""Which gate settings can be used: the one check every door (web form, admin, service) calls.

A setting is refused, with the reason, when it is not a finite number of the right kind, or when
the gate it configures could never pass (`min_win_rate=5`: a win rate is at most 1) or would
never test anything (a margin beyond the whole range of a metric in [0, 1]). Accepting such a
value silently turned every later report into a fail nobody could explain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.metrics.registry import metric, names, stored_metrics
from pipelines.parse import InvalidNumber, check_number

from .gates import GateSettings

#: Counts (votes, images per group) above this are typing errors, not policies.
MAX_COUNT = 1_000_000
#: A margin on an unbounded metric (SAD, gradient, connectivity: /1000 units) above this is a
#: typing error: a 12 MP photo's whole SAD is 12.
MAX_UNBOUNDED_MARGIN = 1_000.0
#: A latency budget above an hour per image is a typing error.
MAX_LATENCY_MS = 3_600_000.0


def _number(value: Any, name: str, **bounds: Any) -> tuple[Any, str | None]:
    try:
        return check_number(value, name=name, **bounds), None
    except InvalidNumber as exc:
        return None, str(exc)


def _margins(value: Any) -> list[str]:
    known = names(stored_metrics())
    if not isinstance(value, Mapping):
        return ['metric_margins: expected an object such as {"iou": 0.01, "mae": 0.01}']
    problems = []
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        problems.append(
            f"metric_margins: unknown metric(s) {', '.join(unknown)}; gates test the per-image "
            f"metrics {', '.join(known)}"
        )
    for key, margin in value.items():
        upper = metric(key).upper if key in known else 1.0
        hi = MAX_UNBOUNDED_MARGIN if upper is None else upper
        _, why = _number(margin, f"metric_margins.{key}", lo=0.0, hi=hi)
        if why:
            span = "any size" if upper is None else f"from 0 to {upper:g}"
            problems.append(f"{why} (a margin is a change of the metric: {span}, e.g. 0.01)")
    return problems


def gate_settings_problems(values: Mapping[str, Any], *, rounds: int | None = None) -> list[str]:
    """What is wrong with the gate settings in `values` (only the keys present are checked);
    an empty list when they can all be used. `rounds`: the bootstrap rounds of the reports
    (GateSettings' default)."""
    rounds = GateSettings().rounds if rounds is None else rounds
    problems: list[str] = []
    if "metric_margins" in values:
        problems += _margins(values["metric_margins"])
    for key in ("improvement_margin", "fairness_margin"):
        if key in values:
            _, why = _number(values[key], key, lo=0.0, hi=1.0)
            if why:
                problems.append(f"{why} (a change of a metric in [0, 1])")
    if values.get("min_win_rate") is not None:
        rate, why = _number(values["min_win_rate"], "min_win_rate")
        if why:
            problems.append(why)
        elif not 0.0 <= rate < 1.0:
            problems.append(
                f"min_win_rate {rate} can never be met: a win rate lies between 0 and 1 and the "
                "gate needs its interval's lower bound above the minimum; give a value from 0 to "
                "below 1 (e.g. 0.5), or leave it empty for no crowd win-rate gate"
            )
    if values.get("latency_budget_ms") is not None:
        budget, why = _number(values["latency_budget_ms"], "latency_budget_ms", hi=MAX_LATENCY_MS)
        if why:
            problems.append(why)
        elif budget <= 0:
            problems.append(
                f"latency_budget_ms {budget} can never be met: every prediction takes more than "
                "0 ms; give a budget in milliseconds (e.g. 250), or leave it empty for none"
            )
    if "min_votes" in values:
        _, why = _number(values["min_votes"], "min_votes", lo=0, hi=MAX_COUNT, integer=True)
        if why:
            problems.append(why)
    if "min_group_size" in values:
        _, why = _number(values["min_group_size"], "min_group_size", lo=2, hi=MAX_COUNT,
                         integer=True)  # fmt: skip
        if why:
            problems.append(f"{why} (a group needs 2 or more images for an interval)")
    if "alpha" in values:
        alpha, why = _number(values["alpha"], "alpha")
        smallest = 1.0 / (rounds + 1)
        if why:
            problems.append(why)
        elif not 0.0 < alpha < 0.5:
            problems.append(f"alpha must be between 0 and 0.5 (e.g. 0.025), got {alpha}")
        elif alpha < smallest:
            problems.append(
                f"alpha {alpha} can never be met: with {rounds} bootstrap rounds the smallest "
                f"p-value is 1/{rounds + 1} ≈ {smallest:.2g}; give alpha of at least that "
                "(e.g. 0.025)"
            )
    return problems


__all__ = ["MAX_COUNT", "MAX_LATENCY_MS", "gate_settings_problems"]
