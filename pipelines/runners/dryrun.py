"""The dry run behind model validation: load, one forward on a dummy image, check the outputs.

Runs *inside* the sandbox child (see :func:`pipelines.sandbox.validate_model`) and returns a
:class:`ValidationReport`. Every failure becomes a ``reason`` string a researcher can act on;
nothing here raises for a bad model.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.runners import OutputError, RuntimeUnavailable, create_runner, interpret_outputs
from pipelines.spec import ModelSpec, parse_spec

# Median of 3 timed forwards after one warm-up: single timings on shared 2-core workers varied
# 4x run to run (measured 83–1437 ms for the same call); evaluation runs measure latency properly.
LATENCY_RUNS = 3

# Phrases allocators use when a request exceeds RLIMIT_AS / physical memory (torch's
# DefaultCPUAllocator, std::bad_alloc via pybind, onnxruntime's BFCArena, numpy).
_OOM_MARKERS = (
    "can't allocate memory",
    "cannot allocate memory",
    "out of memory",
    "bad_alloc",
    "failed to allocate",
    "unable to allocate",
)


@dataclass
class ValidationReport:
    """Outcome of a validation; ``reason`` is exact when ``ok`` is False."""

    ok: bool
    reason: str
    format: str | None = None
    load_ms: float | None = None
    latency_ms: float | None = None
    output_shapes: list[list[int]] = field(default_factory=list)
    output_names: list[str | None] = field(default_factory=list)
    dtype: str | None = None
    value_range: list[float] | None = None
    confidence: float | None = None
    runner: dict[str, Any] | None = None
    # True when this worker cannot run the format (e.g. Core ML off macOS): not the model's
    # fault, so the registry should retry on the right queue instead of rejecting the version.
    runtime_unavailable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception is an allocation failure (as opposed to a bug in the model)."""
    text = f"{type(exc).__name__}: {exc}".lower()
    return isinstance(exc, MemoryError) or any(m in text for m in _OOM_MARKERS)


def describe_exception(exc: BaseException, memory_mb: int | None = None) -> str:
    """One line: 'out of memory (…limit…): msg' for allocation failures, else 'Type: msg'."""
    message = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else ""
    if is_out_of_memory(exc):
        limit = f"more than the {memory_mb} MB limit" if memory_mb else "more than is available"
        return (
            f"out of memory: the model tried to allocate {limit} ({message or type(exc).__name__})"
        )
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def dummy_image(size: tuple[int, int]) -> np.ndarray:
    """A deterministic photo-like RGB image: soft gradient background and a centred 'subject'.

    Not random noise: classical runners (GrabCut) take ~10× longer on noise than on photos, and a
    validation should time the typical case.
    """
    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([60 + 80 * x / w, 90 + 60 * y / h, np.full_like(x, 140)], axis=-1)
    subject = ((x - w / 2) / (0.22 * w)) ** 2 + ((y - h / 2) / (0.32 * h)) ** 2 <= 1
    img[subject] = (210, 120, 60)
    noise = np.random.default_rng(0).normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _value_range(a: np.ndarray) -> list[float] | None:
    if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
        return None
    finite = a[np.isfinite(a)] if np.issubdtype(a.dtype, np.floating) else a
    return [float(finite.min()), float(finite.max())] if finite.size else None


def dry_run(
    path: str | None,
    spec: dict[str, Any] | ModelSpec,
    runtime: str = "auto",
    threads: int | None = None,
    memory_mb: int | None = None,
) -> ValidationReport:
    """Load, a warm-up forward, LATENCY_RUNS timed forwards, output checks."""
    model_spec = parse_spec(spec)
    report = ValidationReport(ok=False, reason="", format=model_spec.format)
    try:
        runner = create_runner(model_spec, runtime, threads=threads)  # imports the runtime
        t0 = time.perf_counter()  # load time = the model's own cost, not the library import
        runner.load(Path(path) if path else None, model_spec)
    except RuntimeUnavailable as e:
        report.reason = f"cannot validate on this worker: {e}"
        report.runtime_unavailable = True
        return report
    except Exception as e:
        report.reason = f"failed to load the model: {describe_exception(e, memory_mb)}"
        return report
    report.load_ms = (time.perf_counter() - t0) * 1e3
    report.runner = runner.describe()
    image = dummy_image(model_spec.input.size)
    try:
        model_input, _ = runner.prepare(image)
        outputs = runner.forward(model_input)  # warm-up: first calls allocate and plan
        times = []
        for _ in range(LATENCY_RUNS):
            t1 = time.perf_counter()
            outputs = runner.forward(model_input)
            times.append((time.perf_counter() - t1) * 1e3)
        report.latency_ms = float(np.median(times))
    except Exception as e:
        shape = "×".join(str(s) for s in getattr(model_input, "shape", ())) or "image"
        report.reason = (
            f"the forward pass on a dummy {shape} input failed: {describe_exception(e, memory_mb)}"
        )
        return report
    report.output_shapes = [list(o.value.shape) for o in outputs]
    report.output_names = [o.name for o in outputs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            alpha_index = _alpha_position(outputs, model_spec)
            raw_alpha = np.asarray(outputs[alpha_index].value)
            report.dtype = str(raw_alpha.dtype)
            report.value_range = _value_range(raw_alpha)
            _, confidence = interpret_outputs(outputs, model_spec)
        except OutputError as e:
            report.reason = str(e)
            return report
    report.confidence = confidence
    report.ok = True
    report.reason = "ok"
    return report


def _alpha_position(outputs: list[Any], spec: ModelSpec) -> int:
    """Index of the alpha output for reporting; interpret_outputs raises the precise error."""
    names = [o.name for o in outputs]
    if spec.alpha.name is not None and spec.alpha.name in names:
        return names.index(spec.alpha.name)
    if spec.alpha.index is not None and spec.alpha.index < len(outputs):
        return spec.alpha.index
    interpret_outputs(outputs, spec)  # raises OutputError naming the missing output
    raise OutputError("alpha output not found")
