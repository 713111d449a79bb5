"""Convert a registered ``torch.export`` program to a Core ML ML Program (``.mlpackage``, zipped).

Normalisation is baked in, so the converted model takes a plain 0–255 image:

* the Core ML ``ImageType`` input (H×W of the spec, colour layout = the parent's colour order)
  applies ``scale * x + bias`` — a *scalar* scale and per-channel bias. When the parent's three
  std values are equal that expresses ``(x / scale - mean) / std`` completely
  (``scale' = 1 / (scale * std)``, ``bias' = -mean / std``);
* otherwise the image input does ``x / scale - mean`` and the graph divides by ``std`` per channel
  (a ``real_div`` by a constant right after the input).

:func:`pipelines.convert.coreml_check.check_coreml_normalisation` reads both back from the saved
model and proves they reproduce the parent spec. The child spec therefore says
``scale 1, mean [0, 0, 0], std [1, 1, 1]``: the platform hands Core ML raw pixels.

Precision is float32 by default: the product compares runtimes (cross-runtime parity), and an
fp16 graph would make that comparison measure precision rather than conversion errors. Pass
``precision="float16"`` for a smaller, ANE-friendly model (the image preprocessing ops stay fp32).
"""

from __future__ import annotations

import json
import logging
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipelines.convert.common import (
    ConversionError,
    OrderedOutputs,
    child_spec,
    example_input,
    load_program,
)
from pipelines.hashing import sha256_file
from pipelines.spec import ModelSpec, parse_spec, validate_spec

MINIMUM_TARGET = "macOS13"  # first release with ML Program fp32 + the ops torch.export emits


@dataclass(frozen=True)
class ImageNormalisation:
    """How the converted model normalises: image ``scale``/``bias`` then optional graph divisor."""

    scale: float
    bias: tuple[float, float, float]
    divisor: tuple[float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def coreml_normalisation(parent: ModelSpec) -> ImageNormalisation:
    """Split the parent's ``(x / scale - mean) / std`` into image scale/bias (+ graph divisor)."""
    s, mean, std = parent.input.scale, parent.input.mean, parent.input.std
    if std[0] == std[1] == std[2]:
        return ImageNormalisation(
            scale=1.0 / (s * std[0]), bias=(-mean[0] / std[0], -mean[1] / std[1], -mean[2] / std[2])
        )
    return ImageNormalisation(scale=1.0 / s, bias=(-mean[0], -mean[1], -mean[2]), divisor=std)


def build_mlmodel(
    module: Any,
    parent: ModelSpec,
    *,
    normalisation: ImageNormalisation | None = None,
    precision: str = "float32",
    metadata: dict[str, str] | None = None,
) -> Any:
    """Convert a torch module honouring ``parent``'s contract to an ``ct.models.MLModel``.

    ``normalisation`` defaults to :func:`coreml_normalisation`; tests pass a wrong one to prove
    the check catches it.
    """
    import coremltools as ct
    import torch

    norm = normalisation or coreml_normalisation(parent)
    wrapper = OrderedOutputs(module, parent, divisor=norm.divisor)
    h, w = parent.input.size
    with torch.no_grad():
        program = torch.export.export(wrapper, (example_input(parent, pixels=True),))
    program = program.run_decompositions({})  # coremltools converts core-ATen programs
    outputs = [ct.TensorType(name="alpha")]
    if parent.confidence is not None:
        outputs.append(ct.TensorType(name="confidence"))
    layout = ct.colorlayout.RGB if parent.input.color == "RGB" else ct.colorlayout.BGR
    image = ct.ImageType(
        name="image",
        shape=(1, 3, h, w),
        scale=norm.scale,
        bias=list(norm.bias),
        color_layout=layout,
    )
    if precision not in ("float32", "float16"):
        raise ValueError("precision must be 'float32' or 'float16'")
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    try:
        mlmodel = ct.convert(
            program,
            inputs=[image],
            outputs=outputs,
            convert_to="mlprogram",
            compute_precision=(
                ct.precision.FLOAT32 if precision == "float32" else ct.precision.FLOAT16
            ),
            minimum_deployment_target=getattr(ct.target, MINIMUM_TARGET),
        )
    except Exception as e:
        raise ConversionError(f"coremltools could not convert the program: {e}") from e
    mlmodel.short_description = "Subject lifting: alpha matte + subject confidence"
    mlmodel.input_description["image"] = f"{parent.input.color} image, {w}×{h}, 0–255"
    mlmodel.output_description["alpha"] = f"1×1×{h}×{w} alpha ({parent.alpha.kind})"
    if parent.confidence is not None:
        mlmodel.output_description["confidence"] = f"subject confidence ({parent.confidence.kind})"
    meta = {"normalisation": json.dumps(norm.to_dict()), **(metadata or {})}
    for key, value in meta.items():
        mlmodel.user_defined_metadata[key] = value
    return mlmodel


def save_zipped(mlmodel: Any, out_path: str | Path) -> Path:
    """Save as ``<stem>.mlpackage`` and zip it to ``out_path`` (entries under that folder)."""
    out_path = Path(out_path)
    stem = out_path.name.removesuffix(".zip").removesuffix(".mlpackage") or "model"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlpackage-") as tmp:
        package = Path(tmp) / f"{stem}.mlpackage"
        mlmodel.save(str(package))
        with zipfile.ZipFile(out_path, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(package.rglob("*")):
                if f.is_file():
                    zf.write(f, f.relative_to(tmp).as_posix())
    return out_path


def convert_coreml(
    src_pt2: str | Path,
    spec: ModelSpec | dict[str, Any],
    out_path: str | Path,
    *,
    source_version: str | None = None,
    precision: str = "float32",
) -> dict[str, Any]:
    """Convert a .pt2 to a zipped ``.mlpackage`` at ``out_path``; return the child spec.

    Metadata (``source_version``, ``source_sha256``, ``parent_spec``, ``normalisation``) goes into
    the model's user-defined metadata. Prediction needs macOS; conversion runs anywhere.
    """
    parent = parse_spec(spec)
    if parent.format != "torch_export":
        raise ConversionError(f"the parent spec is {parent.format!r}; expected 'torch_export'")
    program = load_program(src_pt2)
    parent_doc = {k: v for k, v in parent.to_dict().items() if k != "training"}
    mlmodel = build_mlmodel(
        program.module(),
        parent,
        precision=precision,
        metadata={
            "source_version": source_version or "",
            "source_sha256": sha256_file(src_pt2),
            "source_format": "torch_export",
            "parent_spec": json.dumps(parent_doc, sort_keys=True),
        },
    )
    save_zipped(mlmodel, out_path)
    child = child_spec(
        parent,
        "coreml",
        {"scale": 1.0, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "color": "RGB"},
    )
    validate_spec(child)
    return child
