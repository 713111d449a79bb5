"""Prove, on Linux, that a converted Core ML model normalises its input like the parent spec.

Core ML cannot predict here, so the check reads the saved model instead of running it:

1. the input must be an image of the parent's size and colour order;
2. the ML Program is loaded back into MIL (coremltools' milproto loader, weights included) and
   its *input prefix* — the elementwise ops (``mul``/``add``/``sub``/``real_div``/``cast``) fed
   by the image input, i.e. the ImageType scale/bias coremltools inserted plus any per-channel
   std division baked into the graph — is evaluated with numpy on random 0–255 pixels;
3. the result must equal the parent's ``(x / scale - mean) / std`` within ``atol`` (1e-6).

This checks the artefact users will download, not the converter's intentions: a wrong bias, a
swapped colour order or a missing std division all fail it.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.formats import find_mlpackage, safe_extract
from pipelines.spec import ModelSpec, SpecError, parse_spec

NORMALISATION_ATOL = 1e-6
_ELEMENTWISE = {"mul", "add", "sub", "real_div", "cast", "identity"}


@dataclass(frozen=True)
class NormalisationCheck:
    """``ok`` and the measured max abs difference; ``reason`` explains a failure."""

    ok: bool
    max_abs_diff: float
    reason: str


def _load_program(package: Path) -> tuple[Any, Any]:
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load

    spec = ct.utils.load_spec(str(package))
    if spec.WhichOneof("Type") != "mlProgram":
        raise ValueError("not an ML Program (neural-network models are not produced here)")
    weights = package / "Data" / "com.apple.CoreML" / "weights"
    program = load(spec, spec.specificationVersion, str(weights))
    return spec, program


def _eval_prefix(program: Any, input_name: str, x: np.ndarray) -> np.ndarray:
    """Run the elementwise ops fed by the input; return the tensor the first other op consumes."""
    values: dict[str, np.ndarray] = {input_name: x}
    derived = {input_name}
    for op in program.functions["main"].operations:
        inputs = {k: v for k, v in op.inputs.items() if hasattr(v, "name")}
        fed = [v.name for v in inputs.values() if v.name in derived]
        if not fed:
            continue
        if op.op_type not in _ELEMENTWISE:
            return values[fed[0]]  # first non-elementwise consumer: its input is normalised
        args = {
            k: values[v.name] if v.name in values else np.asarray(v.val) for k, v in inputs.items()
        }
        out = op.outputs[0]
        if op.op_type == "cast":
            dtype = {"fp32": np.float32, "fp16": np.float16}.get(str(op.dtype.val), np.float32)
            result = args["x"].astype(dtype)
        elif op.op_type == "identity":
            result = args["x"]
        else:
            fn = {"mul": np.multiply, "add": np.add, "sub": np.subtract, "real_div": np.divide}
            result = fn[op.op_type](args["x"], args["y"])
        values[out.name] = np.asarray(result)
        derived.add(out.name)
    raise ValueError("the image input feeds no computation")


def _target_spec(model_spec: Any, given: ModelSpec) -> ModelSpec:
    """The spec whose normalisation the model must reproduce (see check_coreml_normalisation)."""
    if given.format != "coreml":
        return given
    recorded = model_spec.description.metadata.userDefined.get("parent_spec")
    if not recorded:
        return given
    try:
        return parse_spec(json.loads(recorded))
    except (ValueError, SpecError):
        return given


def _reference(pixels: np.ndarray, parent: ModelSpec) -> np.ndarray:
    """The parent's ``(x / scale - mean) / std`` in float64 (NCHW): the exact target."""
    inp = parent.input
    x = pixels.astype(np.float64)
    if inp.color == "BGR":
        x = x[:, :, ::-1]
    y = (x / inp.scale - np.asarray(inp.mean)) / np.asarray(inp.std)
    return y.transpose(2, 0, 1)[None]


def check_coreml_normalisation(
    mlpackage: str | Path,
    parent_spec: ModelSpec | dict[str, Any],
    *,
    atol: float = NORMALISATION_ATOL,
    seed: int = 0,
) -> NormalisationCheck:
    """Check a ``.mlpackage`` (directory or zip) against the parent's normalisation.

    ``parent_spec`` is the torch parent's spec. Given the Core ML version's *own* spec (format
    ``coreml``, identity normalisation) instead, the parent spec recorded in the model's metadata
    by :func:`convert_coreml` is used; a third-party package without one can only have its input
    size and colour order checked (``ok`` with a reason saying so).
    """
    given = parse_spec(parent_spec)
    path = Path(mlpackage)
    with tempfile.TemporaryDirectory(prefix="coreml-check-") as tmp:
        package = find_mlpackage(safe_extract(path, tmp)) if path.is_file() else path
        try:
            spec, program = _load_program(package)
        except Exception as e:
            return NormalisationCheck(False, float("inf"), f"cannot read the model: {e}")
        parent = _target_spec(spec, given)
        first = spec.description.input[0]
        if first.type.WhichOneof("Type") != "imageType":
            return NormalisationCheck(False, float("inf"), "the input is not an image")
        image = first.type.imageType
        h, w = parent.input.size
        if (image.height, image.width) != (h, w):
            return NormalisationCheck(
                False,
                float("inf"),
                f"image input is {image.width}×{image.height}, the parent spec expects {w}×{h}",
            )
        from coremltools.proto import FeatureTypes_pb2

        colour = FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(image.colorSpace)
        if colour != parent.input.color:
            return NormalisationCheck(
                False,
                float("inf"),
                f"image colour order is {colour}, the parent spec uses {parent.input.color}",
            )
        if parent.format == "coreml":
            return NormalisationCheck(
                True,
                0.0,
                "no parent normalisation recorded in the model; input size and colour order match",
            )
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)  # RGB photo
        # What Core ML feeds the graph: the photo's channels in the image's colour order.
        channels = pixels[:, :, ::-1] if colour == "BGR" else pixels
        x = channels.transpose(2, 0, 1)[None].astype(np.float32)
        try:
            got = _eval_prefix(program, first.name, x)
        except (ValueError, KeyError) as e:
            return NormalisationCheck(False, float("inf"), f"cannot evaluate the input ops: {e}")
    expected = _reference(pixels, parent)
    if got.shape != expected.shape:
        return NormalisationCheck(
            False,
            float("inf"),
            f"normalised input has shape {got.shape}, expected {expected.shape}",
        )
    diff = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
    if diff <= atol:
        return NormalisationCheck(True, diff, f"input normalisation matches within {diff:.2g}")
    return NormalisationCheck(
        False,
        diff,
        f"the model's input normalisation differs from the parent spec by {diff:.3g} "
        f"(tolerance {atol:g})",
    )
