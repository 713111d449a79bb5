"""Runners: one small interface (:class:`Runner`) over torch.export, TorchScript, ONNX Runtime,
Core ML and the classical baseline. Pick one with :func:`make_runner`.

Runtime names (the ``--runtime`` of ``python -m pipelines.predict`` and of runs):
``auto`` (best for the spec's format on this worker), ``cpu`` / ``cuda`` / ``mps`` (torch device;
for ONNX models they mean the matching execution provider), ``onnx-cpu`` / ``onnx-cuda`` /
``onnx-coreml``, ``coreml``, ``builtin``. Heavy runtimes are imported lazily so choosing ONNX never
imports torch and vice versa.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.runners.base import (
    NamedOutput,
    OutputError,
    RawOutput,
    Runner,
    RuntimeUnavailable,
    interpret_outputs,
    sigmoid,
)
from pipelines.spec import ModelSpec, parse_spec

RUNTIMES = (
    "auto",
    "cpu",
    "cuda",
    "mps",
    "onnx-cpu",
    "onnx-cuda",
    "onnx-coreml",
    "coreml",
    "builtin",
)
# Which runtimes make sense for which spec format (everything else is a user error, said so).
RUNTIMES_BY_FORMAT: dict[str, tuple[str, ...]] = {
    "torch_export": ("auto", "cpu", "cuda", "mps"),
    "torchscript": ("auto", "cpu", "cuda", "mps"),
    "onnx": ("auto", "cpu", "cuda", "onnx-cpu", "onnx-cuda", "onnx-coreml"),
    "coreml": ("auto", "coreml"),
    "builtin": ("auto", "builtin", "cpu"),
}


def builtin_names() -> tuple[str, ...]:
    """Names a ``builtin`` spec may use (without importing OpenCV's heavy paths)."""
    from pipelines.runners.builtin import BUILTINS

    return BUILTINS


def queue_for_format(fmt: str) -> str:
    """Celery queue a model of this format runs on: ``torch`` / ``onnx`` / ``coreml``."""
    return {"torch_export": "torch", "torchscript": "torch", "builtin": "torch"}.get(fmt, fmt)


def create_runner(spec: ModelSpec, runtime: str = "auto", *, threads: int | None = None) -> Runner:
    """An unloaded runner for ``spec.format`` and ``runtime`` (ValueError when they clash)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    fmt = spec.format
    if runtime not in RUNTIMES_BY_FORMAT[fmt]:
        raise ValueError(
            f"runtime {runtime!r} cannot run a {fmt} model; "
            f"use one of {', '.join(RUNTIMES_BY_FORMAT[fmt])}"
        )
    if fmt in ("torch_export", "torchscript"):
        from pipelines.runners.torch_runners import TorchExportRunner, TorchScriptRunner

        cls = TorchExportRunner if fmt == "torch_export" else TorchScriptRunner
        return cls(device=runtime, threads=threads)
    if fmt == "onnx":
        from pipelines.runners.onnx_runner import OnnxRunner

        return OnnxRunner(provider=runtime.removeprefix("onnx-"), threads=threads)
    if fmt == "coreml":
        from pipelines.runners.coreml_runner import CoreMLRunner

        return CoreMLRunner(threads=threads)
    from pipelines.runners.builtin import BuiltinRunner

    return BuiltinRunner(threads=threads)


def make_runner(
    path: str | Path | None,
    spec: ModelSpec | dict[str, Any],
    runtime: str = "auto",
    *,
    threads: int | None = None,
) -> Runner:
    """Build and load the runner for this model file and spec (``path`` None for builtins)."""
    model_spec = parse_spec(spec)
    runner = create_runner(model_spec, runtime, threads=threads)
    runner.load(path, model_spec)
    return runner


__all__ = [
    "RUNTIMES",
    "RUNTIMES_BY_FORMAT",
    "NamedOutput",
    "OutputError",
    "RawOutput",
    "Runner",
    "RuntimeUnavailable",
    "builtin_names",
    "create_runner",
    "interpret_outputs",
    "make_runner",
    "queue_for_format",
    "sigmoid",
]
