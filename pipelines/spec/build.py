"""Building a model-spec document: the one function that writes the contract's dict.

Every producer of a spec (the reference network's export, built-in runners, conversions' parents,
tests' tiny models) calls :func:`build_spec`, so a new contract field is added in one place. The
defaults are the contract's example: 512×512 RGB, ImageNet normalisation of 0–255 pixels, stretch
resize, alpha probability at output 0, confidence logit at output 1, gate threshold 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SPEC_VERSION = 1

OutputKind = Literal["probability", "logit"]


def build_spec(
    fmt: str,
    *,
    size: int | tuple[int, int] = 512,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    scale: float = 255.0,
    resize: str = "stretch",  # "stretch" or "letterbox" (validate_spec checks)
    alpha_kind: OutputKind = "probability",
    confidence_kind: OutputKind | None = "logit",
    by_name: bool = False,
    gate_threshold: float = 0.5,
    builtin: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A model-spec dict (``docs/contracts/model-spec.md``); outputs are located by index
    (alpha 0, confidence 1) or, with ``by_name``, by the names ``alpha`` / ``confidence`` (ONNX,
    Core ML). ``confidence_kind=None`` leaves the confidence output out; ``extra`` adds top-level
    fields (``training``, …). Not validated here: ``pipelines.spec.validate_spec`` does that."""
    height, width = (size, size) if isinstance(size, int) else size

    def output(index: int, name: str, kind: str) -> dict[str, Any]:
        return {"name": name, "kind": kind} if by_name else {"index": index, "kind": kind}

    outputs = {"alpha": output(0, "alpha", alpha_kind)}
    if confidence_kind is not None:
        outputs["confidence"] = output(1, "confidence", confidence_kind)
    spec: dict[str, Any] = {
        "spec_version": SPEC_VERSION,
        "format": fmt,
        "input": {
            "name": "image",
            "layout": "NCHW",
            "size": [height, width],
            "color": "RGB",
            "scale": float(scale),
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
            "resize": resize,
        },
        "outputs": outputs,
        "gate_threshold": gate_threshold,
    }
    if builtin is not None:
        spec["builtin"] = builtin
    spec.update(extra)
    return spec


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "SPEC_VERSION", "build_spec"]
