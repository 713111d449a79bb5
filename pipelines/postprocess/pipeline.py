"""Post-processing of one model output: low-res alpha + confidence + photo → what the user gets.

Order and why: (1) keep the part of the alpha that covers the photo (undo letterbox padding) at
model resolution; (2) upsample to the photo's full resolution (guided by the photo, or bilinear);
(3) quantise to the 8-bit PNG the metrics read; (4) gate on confidence (all zero when gated);
(5) split instances on the PNG. The ungated alpha is always computed and kept, because runs score
both variants and gating must not cost a second upsampling.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from pipelines.spec import LetterboxInfo, ModelSpec, parse_spec

from . import gate as gating
from . import guided, resize
from .instances import MIN_INSTANCE_AREA_FRACTION, Instances, separate_instances


@dataclass
class PostResult:
    """Output of :func:`postprocess`.

    ``alpha_full``: H×W float32 in [0, 1] at the photo's size (zeros when gated).
    ``alpha_png``: H×W uint8, ``round(alpha_full · 255)`` — the file ``predict`` writes.
    ``ungated_png``: the same before gating (the ``--no-gate`` output; ``alpha_png`` if not gated).
    ``instances``: instances of ``alpha_png`` (none when gated). ``timings``: ms per step.
    """

    alpha_full: np.ndarray
    alpha_png: np.ndarray
    ungated_png: np.ndarray
    gated: bool
    confidence: float | None
    threshold: float
    instances: Instances
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def instance_count(self) -> int:
        return len(self.instances)


def to_png(alpha: np.ndarray) -> np.ndarray:
    """8-bit alpha ``round(alpha · 255)`` (ties to even, as NumPy/OpenCV round), clipped to 0–255.

    Two cv2 passes (negatives to zero, then scale + saturate) instead of NumPy's four temporaries;
    the first matters because convertScaleAbs would turn a negative value into its absolute value.
    """
    _, non_negative = cv2.threshold(alpha.astype(np.float32, copy=False), 0, 0, cv2.THRESH_TOZERO)
    return cv2.convertScaleAbs(non_negative, alpha=255.0)


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = (now - self._t) * 1000.0
        self._t = now


def postprocess(
    raw_alpha_lowres: np.ndarray,
    confidence: float | None,
    photo_rgb: np.ndarray,
    spec: ModelSpec | dict[str, Any],
    *,
    gate: bool = True,
    threshold: float | None = None,
    upsample: guided.Method = "guided",
    radius: int = guided.DEFAULT_RADIUS,
    eps: float = guided.DEFAULT_EPS,
    letterbox: LetterboxInfo | None = None,
    instance_map: np.ndarray | None = None,
    min_instance_area: float = MIN_INSTANCE_AREA_FRACTION,
) -> PostResult:
    """Turn a model's raw output into the full-resolution alpha, PNG, gate decision and instances.

    ``raw_alpha_lowres``: the model's alpha at the spec's input size, float in [0, 1] (sigmoid
    already applied by the runner). ``confidence``: probability or None. ``photo_rgb``: the photo
    as the user sees it (EXIF-oriented), H×W×3 uint8. ``spec``: the model spec (``ModelSpec`` or a
    document, validated); ``input.resize`` and ``gate_threshold`` are read. ``threshold``
    overrides the spec's threshold; ``gate=False`` reports the decision but never zeroes the
    alpha. ``letterbox``: the box from preprocessing (``RawOutput.letterbox``; required for
    ``letterbox`` specs). ``instance_map``: a model's instance-head labels, used instead of
    connected components.
    """
    if photo_rgb.ndim != 3 or photo_rgb.shape[2] != 3 or photo_rgb.dtype != np.uint8:
        raise ValueError(f"photo must be H×W×3 uint8, got {photo_rgb.shape} {photo_rgb.dtype}")
    alpha = np.asarray(raw_alpha_lowres, dtype=np.float32)
    if alpha.ndim == 4 and alpha.shape[:2] == (1, 1):
        alpha = alpha[0, 0]
    if alpha.ndim != 2:
        raise ValueError(f"alpha must be H×W or 1×1×H×W, got shape {alpha.shape}")
    if not np.isfinite(alpha).all():
        raise ValueError("alpha contains NaN or infinite values")
    clock = _Clock()
    model_spec = parse_spec(spec)
    region = np.clip(resize.content_region(alpha, model_spec.input.resize, letterbox), 0.0, 1.0)
    clock.lap("undo_resize")
    full = guided.upsample(region, photo_rgb, upsample, radius=radius, eps=eps)
    clock.lap("upsample")
    ungated_png = to_png(full)
    clock.lap("quantise")
    thr = gating.resolve_threshold(model_spec.gate_threshold, threshold)
    decision = gating.decide(confidence, thr)
    gated = decision.gated and gate
    alpha_full = gating.apply_gate(full, decision) if gate else full
    alpha_png = np.zeros_like(ungated_png) if gated else ungated_png
    clock.lap("gate")
    instances = separate_instances(
        alpha_png, min_area_fraction=min_instance_area, instance_map=instance_map
    )
    clock.lap("instances")
    clock.timings["total"] = sum(clock.timings.values())
    return PostResult(
        alpha_full=alpha_full,
        alpha_png=alpha_png,
        ungated_png=ungated_png,
        gated=gated,
        confidence=decision.confidence,
        threshold=thr,
        instances=instances,
        timings=clock.timings,
    )
