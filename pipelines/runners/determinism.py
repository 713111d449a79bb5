"""Per-image determinism: the same photo gives the same alpha whatever ran before it.

Why this exists: OpenCV's GrabCut initialises its colour models with k-means, which draws from
OpenCV's thread-local RNG; that state carried over between calls, so an image's output depended on
which images the same process had handled before it (chunk size, retries, worker restarts and a
second worker all changed per-image results). Every sampling algorithm now seeds from the image it
is about to process (:func:`image_seed`), so the history of the process no longer matters.

What each runtime can promise (recorded per run by :func:`describe_determinism`, shown on the run
page):

- builtin (OpenCV): deterministic per image — seeded here; measured identical at 1 and 2 threads.
- torch on CPU: deterministic per image for a given intra-op thread count, with
  ``torch.use_deterministic_algorithms(True)`` (one image at a time, no batch-size effects). The
  thread count itself changes results: torch splits reductions by thread, measured max |Δ alpha|
  ≤ 7e-7 between 1 and 2 threads on the shipped candidates, which moved 5–11 pixels of the 8-bit
  PNGs of 4 photos. So the run records its threads and a reproduction says when they differed.
  CUDA / MPS kernels can pick nondeterministic algorithms (atomics, autotuned convolutions): not
  promised, spread measured by a reproduction.
- onnxruntime CPU EP: sequential execution, deterministic compute and the graph optimisation
  level fixed; measured byte-identical alphas at 1 and 2 intra-op threads (ONNX child of
  1.0.0). CUDA / Core ML EPs: not promised.
- Core ML: the Neural Engine / GPU may run in reduced precision and schedule differently between
  loads: not promised.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pipelines.hashing import sha256_arrays

#: OpenCV's setRNGSeed takes a C int; seeds are folded into [0, 2**31).
SEED_MODULUS = 2**31


def image_seed(image: np.ndarray) -> int:
    """A seed derived from the pixels (and shape) of ``image``: same photo → same seed."""
    return int.from_bytes(bytes.fromhex(sha256_arrays(image))[:8], "little") % SEED_MODULUS


def seed_opencv(image: np.ndarray) -> int:
    """Seed OpenCV's RNG of the calling thread from ``image``; returns the seed used."""
    import cv2

    seed = image_seed(image)
    cv2.setRNGSeed(seed)
    return seed


@dataclass(frozen=True)
class Determinism:
    """Whether a runner promises byte-identical outputs per image, and why (for run records)."""

    deterministic: bool
    note: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DETERMINISTIC_CPU = Determinism(True, "per-image deterministic on CPU (seeded, fixed algorithms)")
TORCH_CPU = Determinism(
    True,
    "per-image deterministic on CPU for a given number of intra-op threads (torch splits "
    "reductions by thread: a different thread count can move a few alpha pixels by one level)",
)


def torch_determinism(device: str) -> Determinism:
    """Switch torch to deterministic algorithms; say whether the device can promise it."""
    import torch

    # warn_only: a model using an op without a deterministic kernel still runs (on CPU torch has
    # one for every op a forward pass of our models uses); the run page then relies on the
    # measured spread rather than a refusal.
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device == "cpu":
        return TORCH_CPU
    if device == "cuda":
        # cuBLAS picks reproducible reductions only with a fixed workspace, read when the CUDA
        # context starts (the model is loaded after this).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        return Determinism(
            False,
            "CUDA: deterministic algorithms requested, but GPU kernels (atomics, TF32, library "
            "versions) do not promise identical bytes; measure the spread with a reproduction",
        )
    return Determinism(
        False,
        f"{device.upper()}: GPU kernels do not promise identical bytes between runs; "
        "measure the spread with a reproduction",
    )


def onnx_session_options(options: Any) -> Any:
    """Fix what can make one ONNX Runtime session differ from another on the same machine."""
    import onnxruntime as ort

    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Same optimised graph on every worker (the default "all" level; set so a changed default
    # in a later onnxruntime does not silently change outputs).
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.use_deterministic_compute = True
    return options


def onnx_determinism(provider: str) -> Determinism:
    if provider == "cpu":
        return DETERMINISTIC_CPU
    return Determinism(
        False,
        f"onnxruntime {provider} execution provider does not promise identical bytes between "
        "runs; measure the spread with a reproduction",
    )


COREML_DETERMINISM = Determinism(
    False,
    "Core ML may run on the Neural Engine / GPU in reduced precision: outputs are not promised "
    "byte-identical between runs; measure the spread with a reproduction",
)
