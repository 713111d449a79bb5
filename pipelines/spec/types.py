"""Typed, read-only views of a validated model-spec document.

Why dataclasses on top of the JSON: runners and post-processing read the same handful of fields in
hot loops; attribute access with types catches typos at mypy time that ``spec["input"]["sclae"]``
would only reveal on a worker. The JSON stays the stored truth (``ModelSpec.raw``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Format = Literal["torch_export", "torchscript", "onnx", "coreml", "builtin"]
OutputKind = Literal["probability", "logit"]

FORMATS: tuple[str, ...] = ("torch_export", "torchscript", "onnx", "coreml", "builtin")


@dataclass(frozen=True)
class InputSpec:
    """How pixels become the input tensor: ``(x / scale - mean) / std`` in ``color`` order."""

    size: tuple[int, int]  # (height, width)
    color: Literal["RGB", "BGR"]
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: Literal["stretch", "letterbox"]
    name: str = "image"
    layout: Literal["NCHW", "NHWC"] = "NCHW"

    @property
    def height(self) -> int:
        return self.size[0]

    @property
    def width(self) -> int:
        return self.size[1]


@dataclass(frozen=True)
class OutputSpec:
    """Where an output sits (tuple ``index`` or graph ``name``) and how to read it (``kind``)."""

    kind: OutputKind
    index: int | None = None
    name: str | None = None

    def describe(self) -> str:
        """Human locator used in error messages: ``index 0`` or ``name 'alpha'``."""
        return f"index {self.index}" if self.index is not None else f"name {self.name!r}"


@dataclass(frozen=True)
class ModelSpec:
    """A whole spec document; build it with :func:`pipelines.spec.load_spec` or ``from_dict``."""

    format: Format
    input: InputSpec
    alpha: OutputSpec
    confidence: OutputSpec | None = None
    gate_threshold: float = 0.5
    builtin: str | None = None
    training: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> ModelSpec:
        """Build from a document that already passed :func:`validate_spec` (no re-validation)."""
        inp = spec["input"]
        outs = spec["outputs"]
        return cls(
            format=spec["format"],
            input=InputSpec(
                size=(int(inp["size"][0]), int(inp["size"][1])),
                color=inp["color"],
                scale=float(inp["scale"]),
                mean=_triple(inp["mean"]),
                std=_triple(inp["std"]),
                resize=inp["resize"],
                name=inp.get("name", "image"),
                layout=inp.get("layout", "NCHW"),
            ),
            alpha=_output(outs["alpha"]),
            confidence=_output(outs["confidence"]) if "confidence" in outs else None,
            gate_threshold=float(spec.get("gate_threshold", 0.5)),
            builtin=spec.get("builtin"),
            training=spec.get("training"),
            raw=spec,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (the original one when built from a dict)."""
        if self.raw:
            return self.raw
        out: dict[str, Any] = {
            "spec_version": 1,
            "format": self.format,
            "input": {
                "name": self.input.name,
                "layout": self.input.layout,
                "size": list(self.input.size),
                "color": self.input.color,
                "scale": self.input.scale,
                "mean": list(self.input.mean),
                "std": list(self.input.std),
                "resize": self.input.resize,
            },
            "outputs": {"alpha": _output_dict(self.alpha)},
            "gate_threshold": self.gate_threshold,
        }
        if self.confidence is not None:
            out["outputs"]["confidence"] = _output_dict(self.confidence)
        if self.builtin is not None:
            out["builtin"] = self.builtin
        if self.training is not None:
            out["training"] = self.training
        return out


def _triple(values: list[float]) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)


def _output(d: dict[str, Any]) -> OutputSpec:
    return OutputSpec(kind=d["kind"], index=d.get("index"), name=d.get("name"))


def _output_dict(o: OutputSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": o.kind}
    if o.index is not None:
        d["index"] = o.index
    if o.name is not None:
        d["name"] = o.name
    return d
