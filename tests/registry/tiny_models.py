"""Tiny contract-satisfying models (conv + sigmoid alpha, pooled confidence logit) and broken ones.

Input 64×64 instead of 512² keeps export and the sandboxed dry run fast; the contract allows any
size ≥ 16.
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipelines.spec import build_spec

SIZE = 64
# Far past the sandbox limit the tests set (MEMORY_LIMIT_MB), yet well under this machine's RAM,
# so a broken limit shows up as a passing forward rather than as the OOM killer.
HOG_BYTES = 6 << 30
MEMORY_LIMIT_MB = 3072


def spec_for(fmt: str, **extra: Any) -> dict[str, Any]:
    return build_spec(fmt, size=SIZE, by_name=fmt == "onnx", **extra)


class Tiny(nn.Module):
    """Conv + sigmoid alpha and a linear confidence logit; `kind` breaks it on purpose."""

    def __init__(self, kind: str = "good") -> None:
        super().__init__()
        self.kind = kind
        self.conv = nn.Conv2d(3, 1, 3, padding=1)
        self.head = nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = torch.sigmoid(self.conv(x))
        confidence = self.head(x.mean(dim=(2, 3))).reshape(1)
        if self.kind == "wrong_shape":
            alpha = alpha[:, :, ::2, ::2]
        elif self.kind == "nan":
            alpha = alpha * float("nan")
        elif self.kind == "hog":
            big = torch.ones(HOG_BYTES // 4, dtype=torch.float32)
            alpha = alpha + big[:1].sum() * 0
        return alpha, confidence


def _module(kind: str = "good") -> Tiny:
    torch.manual_seed(0)
    return Tiny(kind).eval()


def _example() -> Any:
    return torch.rand(1, 3, SIZE, SIZE)


def write_pt2(path: Path, kind: str = "good") -> Path:
    with warnings.catch_warnings():
        # torch 2.13's own pytree code warns about its LeafSpec check while exporting.
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.export.export(_module(kind), (_example(),))
        torch.export.save(program, str(path))
    return path


def write_torchscript(path: Path, kind: str = "good") -> Path:
    with warnings.catch_warnings():
        # Expected here: TorchScript is deprecated in torch 2.13, and still an accepted format.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.trace(_module(kind), (_example(),), check_trace=False)
        torch.jit.save(scripted, str(path))
    return path


def write_onnx(path: Path) -> Path:
    import logging

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's own pytree deprecation
        program = torch.onnx.export(
            _module(),
            (_example(),),
            input_names=["image"],
            output_names=["alpha", "confidence"],
            dynamo=True,
            verbose=False,
        )
    program.save(str(path))
    return path


def write_pickle(path: Path) -> Path:
    torch.save(_module(), str(path))
    return path


def write_random(path: Path) -> Path:
    path.write_bytes(os.urandom(4096))
    return path


def write_traversal_zip(path: Path) -> Path:
    """A torch-looking archive with an entry that would escape the extraction folder."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/archive_format", "pt2")
        zf.writestr("archive/../../evil.sh", "echo owned")
    path.write_bytes(buf.getvalue())
    return path


def write_spec(model: Path, spec: dict[str, Any]) -> Path:
    target = Path(f"{model}.spec.json")
    target.write_text(json.dumps(spec))
    return target
