"""Tiny random-weight models that honour (or deliberately break) the model-spec contract.

Imported by the spec/formats/runners/sandbox/convert tests (``from test_runners_models import
...``); also tests that the well-behaved ones satisfy the contract in eager mode. Models are
written to disk with the real exporters so every test exercises real files.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipelines.spec import build_spec

SIZE = 512  # the contract's input size; validation runs a dummy image at the spec's size

SPEC: dict[str, Any] = build_spec("torch_export", size=SIZE)


def spec(fmt: str = "torch_export", size: int = SIZE, **input_overrides: Any) -> dict[str, Any]:
    """The contract's spec for ``fmt`` at ``size`` (ONNX/Core ML keep index-based outputs too)."""
    doc = build_spec(fmt, size=size)
    doc["input"].update(input_overrides)
    return doc


class TinyNet(nn.Module):
    """conv → sigmoid alpha at input size, pooled linear confidence logit: the contract's shape."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 1, 1)
        self.conf = nn.Linear(4, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return torch.sigmoid(self.head(f)), self.conf(f.mean((2, 3))).squeeze(1)


class HalfSizeNet(TinyNet):
    """Returns alpha at half the input resolution (wrong shape)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha, conf = super().forward(x)
        return nn.functional.avg_pool2d(alpha, 2), conf


class NaNNet(TinyNet):
    """Alpha full of NaN."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha, conf = super().forward(x)
        return torch.full_like(alpha, float("nan")), conf


class MemoryHogNet(TinyNet):
    """Allocates 64 GiB in forward (only ever run inside the sandbox's memory limit)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha, conf = super().forward(x)
        hog = torch.ones(64 * 2**30, dtype=torch.uint8)
        return alpha + hog[:1].float() * 0, conf


class LogitNet(TinyNet):
    """Returns alpha *logits* (spec kind 'logit')."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.head(f) * 10, self.conf(f.mean((2, 3))).squeeze(1)


def example(size: int = SIZE) -> torch.Tensor:
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))


def save_pt2(model: nn.Module, path: Path, size: int = SIZE) -> Path:
    with torch.no_grad():
        ep = torch.export.export(model.eval(), (example(size),))
    torch.export.save(ep, str(path))
    return path


def save_torchscript(model: nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
        torch.jit.script(model.eval()).save(str(path))
    return path


def save_onnx(model: nn.Module, path: Path, size: int = SIZE) -> Path:
    torch.onnx.export(
        model.eval(),
        (example(size),),
        str(path),
        dynamo=True,
        verbose=False,
        input_names=["image"],
        output_names=["alpha", "confidence"],
    )
    return path


def test_tiny_net_honours_the_contract_in_eager_mode() -> None:
    with torch.no_grad():
        alpha, conf = TinyNet().eval()(example(64))
    assert alpha.shape == (1, 1, 64, 64) and conf.shape == (1,)
    assert float(alpha.min()) >= 0 and float(alpha.max()) <= 1
