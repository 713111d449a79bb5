"""Export a registered ``torch.export`` program to ONNX and prove it computes the same thing.

Uses the dynamo exporter (``torch.onnx.export(..., dynamo=True)``, onnxscript pinned in
requirements) — the legacy TorchScript-based exporter is deprecated with TorchScript. Opset 18
(≥ 17 as the platform requires; 18 is the dynamo exporter's native opset, so no down-conversion).
Verification runs onnxruntime (CPU EP) and torch on the same random input and records the max abs
difference in the ONNX file's ``metadata_props`` so the registry can show it later.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.convert.common import (
    ConversionError,
    OrderedOutputs,
    child_spec,
    example_input,
    load_program,
)
from pipelines.hashing import sha256_file
from pipelines.spec import ModelSpec, parse_spec, validate_spec

OPSET = 18
# float32 through different kernels: the tiny/reference nets differ by ~1e-6; 1e-4 leaves room for
# deeper models and still catches a wrong op (which differs by ≥ 1e-2).
ONNX_ATOL = 1e-4


def verify_onnx(module: Any, onnx_path: str | Path, spec: ModelSpec, *, seed: int = 0) -> float:
    """Max abs difference between torch ``module`` and the ONNX file on a random input."""
    import onnxruntime as ort

    x = example_input(spec, seed=seed)
    with torch.no_grad():
        expected = [t.detach().numpy() for t in OrderedOutputs(module, spec)(x)]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    if len(got) != len(expected):
        raise ConversionError(f"ONNX model has {len(got)} outputs, torch has {len(expected)}")
    diffs = []
    for e, g in zip(expected, got, strict=True):
        if e.shape != np.shape(g):
            raise ConversionError(f"ONNX output shape {np.shape(g)} differs from torch {e.shape}")
        diffs.append(float(np.max(np.abs(e.astype(np.float64) - g))))
    return max(diffs)


def export_onnx(
    src_pt2: str | Path,
    spec: ModelSpec | dict[str, Any],
    out_path: str | Path,
    *,
    source_version: str | None = None,
    atol: float = ONNX_ATOL,
) -> dict[str, Any]:
    """Write ``out_path`` (.onnx) from a .pt2 and return the child version's spec.

    Raises :class:`ConversionError` when the exported graph differs from torch by more than
    ``atol``. The verified difference is stored as ``verification_max_abs_diff`` metadata.
    """
    parent = parse_spec(spec)
    program = load_program(src_pt2)
    module = program.module()
    wrapper = OrderedOutputs(module, parent)
    names = ["alpha", "confidence"][: 2 if parent.confidence is not None else 1]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # The exporter logs progress at INFO/WARNING (torchvision not installed, etc.): not ours.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    try:
        onnx_program = torch.onnx.export(
            wrapper,
            (example_input(parent),),
            input_names=["image"],
            output_names=names,
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    except Exception as e:
        raise ConversionError(f"torch.onnx.export failed: {type(e).__name__}: {e}") from e
    if onnx_program is None:
        raise ConversionError("torch.onnx.export returned no program")
    onnx_program.save(str(out_path))
    diff = verify_onnx(module, out_path, parent)
    if not diff <= atol:
        raise ConversionError(
            f"ONNX export differs from torch by {diff:.3g} (max abs), tolerance {atol:g}"
        )
    _add_metadata(
        out_path,
        {
            "source_sha256": sha256_file(src_pt2),
            "source_version": source_version or "",
            "source_format": "torch_export",
            "verification_max_abs_diff": f"{diff:.3g}",
        },
    )
    child = child_spec(parent, "onnx", {})
    validate_spec(child)
    return child


def _add_metadata(path: Path, props: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def onnx_metadata(path: str | Path) -> dict[str, str]:
    """``metadata_props`` of an ONNX file as a dict (e.g. ``verification_max_abs_diff``)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
