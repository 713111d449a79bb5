"""Cross-app lookups through named providers that fail loudly.

An app lower in the dependency order (the registry, `models/`) sometimes shows data owned by an
app above it (the evaluation runs of a model version) without importing it. The app above
registers a function here from its `AppConfig.ready()`; the app below asks for it by name.
A provider that was never registered is a wiring bug: `provider()` raises `ProviderMissing`
naming what is registered, instead of quietly returning nothing.

Names are the constants below, so a typo fails at import time, not at run time; each carries
the type of the function registered under it, so a caller gets a typed answer (a model, a
`pipelines/payloads/` dataclass), never an untyped dict. The other
direction, a lower app telling the apps above that something happened (a run finished), is a
Django signal the lower app declares in its `signals.py` and the upper app connects to in
`ready()`. The app order is checked by `make lint` (import-linter, `[tool.importlinter]` in
pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from django.db.models import Model

from pipelines.payloads.fairness import PairedFairness

F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class Provided(Generic[F]):
    """A provider's name, typed with the function registered under it."""

    name: str


#: (model version id) -> its EvalRuns, newest first; registered by the evals app.
RUNS_OF_MODEL_VERSION: Provided[Callable[[int], Iterable[Model]]] = Provided(
    "runs_of_model_version"
)

#: (baseline=, candidate=: EvalRuns on one set version) -> the fairness compare page's per-group
#: paired deltas (with a message when the set has no person attributes); registered by fairness.
PAIRED_FAIRNESS: Provided[Callable[..., PairedFairness]] = Provided("paired_fairness")

_PROVIDERS: dict[str, Callable[..., object]] = {}


class ProviderMissing(LookupError):
    """No app registered the provider asked for (an app is missing from INSTALLED_APPS, or its
    `ready()` does not register it)."""


def provide(key: Provided[F], fn: F) -> None:
    """Register `fn` as the provider `key` (idempotent for the same function)."""
    current = _PROVIDERS.get(key.name)
    if current is not None and current is not fn:
        raise ValueError(f"provider {key.name!r} is already registered by {current.__module__}")
    _PROVIDERS[key.name] = fn


def provider(key: Provided[F]) -> F:
    """The registered provider `key`; raises ProviderMissing when none is."""
    try:
        return cast(F, _PROVIDERS[key.name])  # provide() stored it under this key's type
    except KeyError:
        raise ProviderMissing(
            f"no provider {key.name!r} is registered (registered: {sorted(_PROVIDERS) or 'none'}); "
            "the app that provides it must call evalsite.core.providers.provide() in ready()"
        ) from None


__all__ = [
    "PAIRED_FAIRNESS",
    "RUNS_OF_MODEL_VERSION",
    "Provided",
    "ProviderMissing",
    "provide",
    "provider",
]
