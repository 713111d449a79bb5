"""torch.export (.pt2, primary) and TorchScript (deprecated in torch 2.13, still accepted) runners.

Device: ``mps`` if available, else ``cuda``, else ``cpu`` (``auto``), or the one asked for — and
asking for one this machine lacks is a :class:`RuntimeUnavailable`, never a silent CPU fallback,
because the run records which device produced its latency numbers.

Safety: ``torch.export.load`` internally falls back to ``torch.load(weights_only=False)`` /
``pickle.loads`` for some payload kinds; :func:`pipelines.formats.sniff_format` refuses such
archives, and :func:`forced_weights_only` makes every ``torch.load`` during loading weights-only
anyway (the ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` switch torch reads at call time).
"""

from __future__ import annotations

import os
import typing
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.runners.base import NamedOutput, Runner, RuntimeUnavailable
from pipelines.runners.determinism import Determinism, torch_determinism

TORCH_DEVICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(requested: str = "auto") -> str:
    """Resolve ``auto`` to mps → cuda → cpu; raise RuntimeUnavailable for a missing device."""
    if requested not in TORCH_DEVICES:
        raise ValueError(f"unknown torch device {requested!r}; choose one of {TORCH_DEVICES}")
    if requested == "auto":
        return "mps" if _mps_available() else "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeUnavailable("CUDA was requested but this worker has no CUDA device")
    if requested == "mps" and not _mps_available():
        raise RuntimeUnavailable("MPS was requested but this worker is not an Apple-silicon Mac")
    return requested


@contextmanager
def forced_weights_only() -> Iterator[None]:
    """Make every ``torch.load`` inside the block weights-only, even where torch asks otherwise."""
    saved = {
        k: os.environ.get(k)
        for k in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    }
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def memoised_type_hints() -> Iterator[None]:
    """Answer `typing.get_type_hints` for a class once per block instead of on every call.

    Why: `torch.export.load` rebuilds its schema dataclasses from JSON and asks for the same
    classes' type hints thousands of times (8 400 calls for the demo model: half of a load's CPU,
    0.6 of 1.2 s). A class's hints do not change while one archive is read; callers get a copy.
    """
    real = typing.get_type_hints
    cache: dict[tuple[Any, ...], dict[str, Any]] = {}

    def cached(
        obj: Any, globalns: Any = None, localns: Any = None, include_extras: bool = False
    ) -> dict[str, Any]:
        if not isinstance(obj, type) or localns is not None:
            return real(obj, globalns, localns, include_extras)
        key = (obj, id(globalns), include_extras)
        if key not in cache:
            cache[key] = real(obj, globalns, localns, include_extras)
        return dict(cache[key])

    typing.get_type_hints = cached  # type: ignore[assignment]
    try:
        yield
    finally:
        typing.get_type_hints = real


def flatten_torch_outputs(result: Any) -> list[NamedOutput]:
    """Tensor / tuple / list / dict of tensors → NamedOutput list (dict keys become names)."""
    if isinstance(result, torch.Tensor):
        items: list[tuple[str | None, Any]] = [(None, result)]
    elif isinstance(result, dict):
        items = [(str(k), v) for k, v in result.items()]
    elif isinstance(result, (tuple, list)):
        items = [(None, v) for v in result]
    else:
        raise TypeError(f"model returned {type(result).__name__}, expected tensors")
    out: list[NamedOutput] = []
    for name, v in items:
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"model output {name or len(out)} is {type(v).__name__}, not a tensor")
        out.append(
            NamedOutput(
                name,
                v.detach().float().cpu().numpy()
                if v.dtype == torch.bfloat16
                else v.detach().cpu().numpy(),
            )
        )
    return out


class _TorchRunner(Runner):
    def __init__(self, *, device: str = "auto", threads: int | None = None) -> None:
        super().__init__(threads=threads)
        self.requested_device = device
        self.module: Any = None
        self._determinism: Determinism | None = None

    def _setup(self) -> None:
        self.device = pick_device(self.requested_device)
        if self.threads:
            torch.set_num_threads(self.threads)
        self._determinism = torch_determinism(self.device)

    def determinism(self) -> Determinism:
        return self._determinism or super().determinism()

    def forward(self, model_input: Any) -> list[NamedOutput]:
        x = torch.from_numpy(np.ascontiguousarray(model_input)).to(self.device)
        with torch.no_grad():
            result = self.module(x)
        return flatten_torch_outputs(result)


class TorchExportRunner(_TorchRunner):
    """Runs a ``torch.export.save`` archive via ``torch.export.load(...).module()``."""

    name = "torch-export"

    def _load(self, path: Path | None) -> None:
        if path is None:
            raise ValueError("a torch_export model needs a .pt2 file")
        self._setup()
        with forced_weights_only(), memoised_type_hints():
            program = torch.export.load(str(path))
            module = program.module()
        # An unlifted export module refuses .train()/.eval(); .to() moves params and buffers.
        self.module = module.to(self.device) if self.device != "cpu" else module


class TorchScriptRunner(_TorchRunner):
    """Runs a TorchScript archive with ``torch.jit.load`` (deprecated in torch 2.13)."""

    name = "torchscript"

    def _load(self, path: Path | None) -> None:
        if path is None:
            raise ValueError("a torchscript model needs a file")
        self._setup()
        with warnings.catch_warnings():
            # Expected here: we accept TorchScript uploads knowingly; elsewhere it still warns.
            warnings.filterwarnings(
                "ignore", message=r"`torch\.jit\.load` is deprecated", category=DeprecationWarning
            )
            self.module = torch.jit.load(str(path), map_location=self.device).eval()
