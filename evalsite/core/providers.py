"""Cross-app lookups through named providers that fail loudly.

An app lower in the dependency order (the registry, `models/`) sometimes shows data owned by an
app above it (the evaluation runs of a model version) without importing it. The app above
registers a function here from its `AppConfig.ready()`; the app below asks for it by name.
A provider that was never registered is a wiring bug: `provider()` raises `ProviderMissing`
naming what is registered, instead of quietly returning nothing.

Names are the constants below, so a typo fails at import time, not at run time. The other
direction, a lower app telling the apps above that something happened (a run finished), is a
Django signal the lower app declares in its `signals.py` and the upper app connects to in
`ready()`. The app order is checked by `make lint` (import-linter, `[tool.importlinter]` in
pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: (model_version) -> list of its EvalRuns, newest first; registered by the evals app.
RUNS_OF_MODEL_VERSION = "runs_of_model_version"

#: (baseline=, candidate=: EvalRuns on one set version) -> the fairness compare page's per-group
#: paired deltas, or {"message"} when the set has no person attributes; registered by fairness.
PAIRED_FAIRNESS = "paired_fairness"

_PROVIDERS: dict[str, Callable[..., Any]] = {}


class ProviderMissing(LookupError):
    """No app registered the provider asked for (an app is missing from INSTALLED_APPS, or its
    `ready()` does not register it)."""


def provide(name: str, fn: Callable[..., Any]) -> None:
    """Register `fn` as the provider `name` (idempotent for the same function)."""
    current = _PROVIDERS.get(name)
    if current is not None and current is not fn:
        raise ValueError(f"provider {name!r} is already registered by {current.__module__}")
    _PROVIDERS[name] = fn


def provider(name: str) -> Callable[..., Any]:
    """The registered provider `name`; raises ProviderMissing when none is."""
    try:
        return _PROVIDERS[name]
    except KeyError:
        raise ProviderMissing(
            f"no provider {name!r} is registered (registered: {sorted(_PROVIDERS) or 'none'}); "
            "the app that provides it must call evalsite.core.providers.provide() in ready()"
        ) from None


__all__ = ["PAIRED_FAIRNESS", "RUNS_OF_MODEL_VERSION", "ProviderMissing", "provide", "provider"]
