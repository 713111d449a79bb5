"""Metric labels and values as every page shows them (from pipelines.metrics.registry)."""

from __future__ import annotations

from typing import Any

from django import template

from pipelines.metrics import registry

register = template.Library()


@register.filter
def metric_label(name: str) -> str:
    """Human label of a metric name (a summary / report / leaderboard key)."""
    return registry.label(str(name))


@register.filter
def image_label(key: str) -> str:
    """Human label of a per-image key (an `ItemResult` column or a per-image row key)."""
    return registry.image_key_label(str(key))


@register.filter
def metric_value(value: Any, name: str) -> str:
    """`value` with the digits the registry gives the metric `name` ("—" when missing)."""
    m = registry.BY_NAME.get(str(name))
    if value is None or value == "":
        return "—"
    return m.format(value) if m else f"{float(value):.3f}"


@register.filter
def image_value(value: Any, key: str) -> str:
    """One image's value of the per-image key `key`, with its metric's digits."""
    if value is None or value == "":
        return "—"
    return f"{float(value):.{registry.image_key_precision(str(key))}f}"


@register.filter
def metric_definition(name: str) -> str:
    m = registry.BY_NAME.get(str(name))
    return f"{m.definition} Set value: {m.aggregation}." if m else ""


@register.filter
def lookup(mapping: object, key: object) -> object:
    """`mapping[key]` (None when absent), for tables whose columns come from the registry."""
    get = getattr(mapping, "get", None)
    return get(key) if callable(get) else None


@register.filter
def field(obj: Any, name: str) -> Any:
    """Attribute `name` of `obj` (an `ItemResult` metric column named by the registry)."""
    return getattr(obj, str(name), None)
