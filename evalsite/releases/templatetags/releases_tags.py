"""Number formatting shared by the report page and its offline export (same text from the JSON)."""

from __future__ import annotations

from typing import Any

from django import template

from evalsite.core.templatetags.metric_tags import lookup

register = template.Library()
DASH = "—"


@register.filter
def num(value: Any, digits: int = 3) -> str:
    if value is None or value == "":
        return DASH
    try:
        return f"{float(value):.{int(digits)}f}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def signed(value: Any, digits: int = 3) -> str:
    if value is None or value == "":
        return DASH
    return f"{float(value):+.{int(digits)}f}"


@register.filter
def pct(value: Any) -> str:
    if value is None or value == "":
        return DASH
    return f"{100 * float(value):.1f} %"


@register.filter
def ci(value: Any, digits: int = 3) -> str:
    """`[low, high]` of a two-element list (signed, as deltas are shown)."""
    if not value or value[0] is None:
        return DASH
    return f"[{float(value[0]):+.{int(digits)}f}, {float(value[1]):+.{int(digits)}f}]"


@register.filter
def ms(value: Any) -> str:
    return DASH if value is None else f"{float(value):.1f} ms"


@register.filter
def label(value: str) -> str:
    from pipelines.metrics.registry import BY_NAME
    from pipelines.release.gates import ATTRIBUTE_LABELS

    if value in BY_NAME:
        return BY_NAME[value].label
    return ATTRIBUTE_LABELS.get(value, value.replace("_", " "))


# `get` is the core's `lookup` under the name the report templates use (one implementation).
register.filter("get", lookup)


@register.filter
def getstr(mapping: Any, key: Any) -> Any:
    """`mapping[str(key)]` (JSON object keys are strings)."""
    try:
        return mapping.get(str(key))
    except AttributeError:
        return None


@register.inclusion_tag("releases/_version_decisions.html")
def version_decisions(version: Any) -> dict[str, Any]:
    """Release decisions on reports where `version` was the candidate (model version page)."""
    from evalsite.releases.selectors import decisions_for_version

    return {"release_decisions": list(decisions_for_version(version)[:20])}
