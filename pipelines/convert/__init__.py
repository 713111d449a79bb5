"""Conversions registered as child versions: ONNX and Core ML ML Program, from a ``.pt2``.

Both load the parent's program (content-checked, weights-only) and return the child's spec
document. Run them through :func:`pipelines.sandbox.run_in_sandbox` when the source is untrusted.
Submodules import torch / coremltools; import them directly to stay lazy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.convert.common import ConversionError
    from pipelines.convert.coreml_check import NormalisationCheck, check_coreml_normalisation
    from pipelines.convert.to_coreml import convert_coreml
    from pipelines.convert.to_onnx import export_onnx

_LAZY = {
    "ConversionError": "pipelines.convert.common",
    "NormalisationCheck": "pipelines.convert.coreml_check",
    "check_coreml_normalisation": "pipelines.convert.coreml_check",
    "convert_coreml": "pipelines.convert.to_coreml",
    "export_onnx": "pipelines.convert.to_onnx",
}


def __getattr__(name: str) -> Any:
    """Lazy re-exports: ``from pipelines.convert import export_onnx`` without importing torch."""
    if name not in _LAZY:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "ConversionError",
    "NormalisationCheck",
    "check_coreml_normalisation",
    "convert_coreml",
    "export_onnx",
]
