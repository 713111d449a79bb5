"""Confidence gating: show "no subject" when the model is not confident there is one.

Why a gate at all: subject lifting on a photo without a subject should return nothing rather than
a random blob; models with a confidence head say so through ``confidence``. The threshold comes
from the model's spec (``gate_threshold``) unless a run overrides it. A model without a confidence
output (``confidence is None``) is never gated — there is nothing to gate on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Used only when a spec has no ``gate_threshold`` (the schema's documented default).
DEFAULT_GATE_THRESHOLD = 0.5


@dataclass(frozen=True)
class GateDecision:
    """Whether an image is gated, with the inputs that decided it (recorded with each result)."""

    gated: bool
    confidence: float | None
    threshold: float


def resolve_threshold(spec_threshold: float | None, override: float | None = None) -> float:
    """The run's override when given, else the spec's ``gate_threshold``, else the default."""
    for value in (override, spec_threshold):
        if value is not None:
            v = float(value)
            if not math.isfinite(v):
                raise ValueError(f"gate threshold must be finite, got {value!r}")
            return v
    return DEFAULT_GATE_THRESHOLD


def decide(confidence: float | None, threshold: float) -> GateDecision:
    """Gated when ``confidence < threshold`` (strictly below, as the spec says); None never gates.

    A NaN confidence is gated: a broken confidence head must not silently pass everything.
    """
    if confidence is None:
        return GateDecision(False, None, threshold)
    c = float(confidence)
    return GateDecision(bool(not (c >= threshold)), c, threshold)


def apply_gate(alpha: np.ndarray, decision: GateDecision) -> np.ndarray:
    """All-zero alpha (same shape and dtype) when gated, else ``alpha`` itself (no copy)."""
    return np.zeros_like(alpha) if decision.gated else alpha
