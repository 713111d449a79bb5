"""Shared pieces of the conversions: loading the source program safely, output ordering, hashing.

Conversions start from the registered ``torch.export`` archive (the primary format) so every child
version descends from exactly the bytes whose sha256 the registry stores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipelines.formats import sniff_format
from pipelines.runners.torch_runners import forced_weights_only
from pipelines.spec import ModelSpec


class ConversionError(RuntimeError):
    """A conversion failed or its output does not reproduce the source; message says which."""


def load_program(src_pt2: str | Path) -> torch.export.ExportedProgram:
    """``torch.export.load`` a .pt2 after checking its content (no pickles, weights-only loads)."""
    fmt = sniff_format(src_pt2)
    if fmt != "torch_export":
        raise ConversionError(f"{Path(src_pt2).name} is a {fmt} model; conversions need a .pt2")
    with forced_weights_only():
        return torch.export.load(str(src_pt2))


class OrderedOutputs(nn.Module):
    """Wrap a model so it returns ``(alpha, confidence)`` (or ``(alpha,)``) in that order.

    Optionally applies in-graph pre-normalisation first: ``(image - shift) / divisor`` per channel
    and an NCHW→NHWC permute for NHWC models. Converted children then have stable output names
    whatever tuple layout the parent used.
    """

    def __init__(
        self,
        module: Any,
        spec: ModelSpec,
        *,
        shift: tuple[float, float, float] | None = None,
        divisor: tuple[float, float, float] | None = None,
    ) -> None:
        super().__init__()
        self.module = module
        self.alpha_index = spec.alpha.index if spec.alpha.index is not None else 0
        self.confidence_index = spec.confidence.index if spec.confidence is not None else None
        self.nhwc = spec.input.layout == "NHWC"
        self.shift: torch.Tensor | None
        self.divisor: torch.Tensor | None
        for attr, value in (("shift", shift), ("divisor", divisor)):
            tensor = None if value is None else torch.tensor(value).view(1, 3, 1, 1)
            self.register_buffer(attr, tensor, persistent=False)
        # Inference wrapper. Set the flag directly: an exported program's module refuses .eval().
        self.training = False

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = image
        if self.shift is not None:
            x = x - self.shift
        if self.divisor is not None:
            x = x / self.divisor
        if self.nhwc:
            x = x.permute(0, 2, 3, 1)
        out = self.module(x)
        if isinstance(out, torch.Tensor):
            out = (out,)
        alpha = out[self.alpha_index]
        if self.confidence_index is None:
            return (alpha,)
        return alpha, out[self.confidence_index]


def example_input(spec: ModelSpec, *, seed: int = 0, pixels: bool = False) -> torch.Tensor:
    """A 1×3×H×W example: normalised-looking noise, or 0–255 pixels when ``pixels``."""
    g = torch.Generator().manual_seed(seed)
    h, w = spec.input.size
    if pixels:
        return torch.rand(1, 3, h, w, generator=g) * 255
    return torch.randn(1, 3, h, w, generator=g)


def child_spec(parent: ModelSpec, fmt: str, input_overrides: dict[str, Any]) -> dict[str, Any]:
    """The converted version's spec: same contract, outputs located by name."""
    doc = parent.to_dict()
    child: dict[str, Any] = {
        "spec_version": 1,
        "format": fmt,
        "input": {**doc["input"], "name": "image", "layout": "NCHW", **input_overrides},
        "outputs": {"alpha": {"name": "alpha", "kind": parent.alpha.kind}},
        "gate_threshold": parent.gate_threshold,
    }
    if parent.confidence is not None:
        child["outputs"]["confidence"] = {"name": "confidence", "kind": parent.confidence.kind}
    if parent.training is not None:
        child["training"] = parent.training  # same weights, same training data
    return child
