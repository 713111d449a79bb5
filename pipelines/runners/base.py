"""The one small interface every runtime implements, and the output checks they all share.

Why a shared ``interpret_outputs``: validation (registry) and evaluation (runs) must reject the same
outputs with the same words — "alpha output has shape (1, 1, 256, 256), spec expects
(1, 1, 512, 512)" — whatever runtime produced them, so the checks live here, not per runner.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.runners.determinism import Determinism
from pipelines.spec import LetterboxInfo, ModelSpec, OutputSpec, parse_spec, preprocess

# Tolerance on a 'probability' output's range: float16 runtimes (Core ML, ORT fp16) overshoot
# [0, 1] by a few ulps; anything beyond 1e-3 means the output is not a probability.
PROBABILITY_TOLERANCE = 1e-3


class RuntimeUnavailable(RuntimeError):
    """This machine cannot run the requested runtime (no macOS, no CUDA, provider missing)."""


class OutputError(ValueError):
    """The model's outputs do not match its spec; ``str()`` is the exact, user-facing reason."""


@dataclass(frozen=True)
class NamedOutput:
    """One raw model output: its graph name when the runtime has one, and its value."""

    name: str | None
    value: np.ndarray


@dataclass
class RawOutput:
    """What a runner returns per image, before post-processing (resize, gating, cut-outs)."""

    alpha: np.ndarray  # float32 H×W at spec size, in [0, 1] after applying the spec's kind
    confidence: float | None  # probability (sigmoid applied when the spec says logit)
    timings: dict[str, float] = field(default_factory=dict)  # ms: preprocess, model
    letterbox: LetterboxInfo | None = None  # how to map alpha back onto the photo
    source_size: tuple[int, int] | None = None  # photo (H, W) the alpha belongs to


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic (no overflow warnings for large negative logits)."""
    x = np.asarray(x, np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _select(outputs: list[NamedOutput], out: OutputSpec, what: str) -> NamedOutput:
    if out.name is not None:
        for o in outputs:
            if o.name == out.name:
                return o
        if out.index is None:
            names = ", ".join(repr(o.name) for o in outputs) or "none"
            raise OutputError(
                f"the model has no output named {out.name!r} for {what}; its outputs: {names}"
            )
    assert out.index is not None  # the spec validator guarantees index or name
    if out.index >= len(outputs):
        n = len(outputs)
        raise OutputError(
            f"the model returned {n} output{'s' if n != 1 else ''}, spec expects {what} at "
            f"index {out.index}"
        )
    return outputs[out.index]


def _check_values(v: np.ndarray, what: str, kind: str) -> None:
    if not np.issubdtype(v.dtype, np.floating):
        raise OutputError(f"{what} output has dtype {v.dtype}, expected a floating-point type")
    if np.isnan(v).any():
        raise OutputError(f"{what} output contains NaN")
    if np.isinf(v).any():
        raise OutputError(f"{what} output contains Inf")
    if kind == "probability" and v.size:
        lo, hi = float(v.min()), float(v.max())
        if lo < -PROBABILITY_TOLERANCE or hi > 1 + PROBABILITY_TOLERANCE:
            raise OutputError(
                f"{what} output ranges over [{lo:.4g}, {hi:.4g}] but the spec says 'probability' "
                "(values in [0, 1]); declare kind 'logit' if the model returns logits"
            )


def interpret_outputs(
    outputs: list[NamedOutput], spec: ModelSpec
) -> tuple[np.ndarray, float | None]:
    """Pick alpha/confidence per the spec, check them, apply ``kind``; raise OutputError."""
    h, w = spec.input.size
    alpha_out = _select(outputs, spec.alpha, "alpha")
    a = np.asarray(alpha_out.value)
    if a.shape != (1, 1, h, w):
        raise OutputError(f"alpha output has shape {tuple(a.shape)}, spec expects (1, 1, {h}, {w})")
    _check_values(a, "alpha", spec.alpha.kind)
    a = a.reshape(h, w)
    alpha = sigmoid(a) if spec.alpha.kind == "logit" else np.clip(a, 0.0, 1.0)
    confidence: float | None = None
    if spec.confidence is not None:
        c = np.asarray(_select(outputs, spec.confidence, "confidence").value)
        if c.size != 1:
            raise OutputError(
                f"confidence output has shape {tuple(c.shape)}, expected one value per image"
            )
        _check_values(c, "confidence", spec.confidence.kind)
        value = float(c.reshape(()))
        confidence = (
            float(sigmoid(np.asarray(value)))
            if spec.confidence.kind == "logit"
            else min(1.0, max(0.0, value))
        )
    return alpha.astype(np.float32), confidence


class Runner(ABC):
    """Load a model once, then ``predict`` photos one at a time.

    Subclasses implement :meth:`_load` and :meth:`forward`; :meth:`prepare` (photo → model input)
    defaults to the spec's float tensor and is overridden by runtimes that take images.
    """

    name: str = "runner"

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads
        self.device = "cpu"
        self._spec: ModelSpec | None = None

    @property
    def spec(self) -> ModelSpec:
        if self._spec is None:
            raise RuntimeError(f"{type(self).__name__}.load() has not been called")
        return self._spec

    def load(self, path: str | Path | None, spec: ModelSpec | dict[str, Any]) -> None:
        """Validate the spec and load the model file (``None`` only for builtin runners)."""
        self._spec = parse_spec(spec)
        self._load(Path(path) if path is not None else None)

    @abstractmethod
    def _load(self, path: Path | None) -> None: ...

    def prepare(self, image_rgb_uint8: np.ndarray) -> tuple[Any, LetterboxInfo]:
        """Photo (H×W×3 RGB uint8) → what :meth:`forward` takes, plus the letterbox box."""
        return preprocess(image_rgb_uint8, self.spec)

    @abstractmethod
    def forward(self, model_input: Any) -> list[NamedOutput]:
        """Run the model on one prepared input; raw outputs in model order."""

    def predict(self, image_rgb_uint8: np.ndarray) -> RawOutput:
        """Preprocess, run, check and interpret one photo (raises OutputError on bad outputs)."""
        t0 = time.perf_counter()
        model_input, info = self.prepare(image_rgb_uint8)
        t1 = time.perf_counter()
        outputs = self.forward(model_input)
        t2 = time.perf_counter()
        alpha, confidence = interpret_outputs(outputs, self.spec)
        return RawOutput(
            alpha=alpha,
            confidence=confidence,
            timings={"preprocess": (t1 - t0) * 1e3, "model": (t2 - t1) * 1e3},
            letterbox=info,
            source_size=(int(image_rgb_uint8.shape[0]), int(image_rgb_uint8.shape[1])),
        )

    def determinism(self) -> Determinism:
        """What this runner promises about repeated outputs (after :meth:`load`)."""
        return Determinism(False, f"{self.name} on {self.device}: determinism not established")

    def describe(self) -> dict[str, Any]:
        """Name, device, threads and determinism, for run records ("which runtime produced
        these numbers, and may a reproduction differ")."""
        return {
            "runner": self.name,
            "device": self.device,
            "threads": self.threads,
            "determinism": self.determinism().as_dict(),
        }
