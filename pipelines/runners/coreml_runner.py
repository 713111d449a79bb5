"""Core ML runner (coremltools ``MLModel.predict``): macOS only, routed to the ``coreml`` queue.

On any other OS :meth:`CoreMLRunner.load` raises :class:`RuntimeUnavailable` before touching the
file, so a Linux worker that receives a Core ML task by mistake fails with a reason that says
where it should have gone, not with coremltools' missing-native-library noise.

Models converted by :mod:`pipelines.convert` take an *image* input (normalisation baked in), so
:meth:`prepare` hands Core ML a PIL image of the resized photo; a model with a multi-array input
gets the spec's float tensor instead.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.formats import find_mlpackage, safe_extract
from pipelines.runners.base import NamedOutput, Runner, RuntimeUnavailable
from pipelines.runners.determinism import COREML_DETERMINISM, Determinism
from pipelines.spec import LetterboxInfo, normalise, resize_for_spec

MACOS_ONLY = "Core ML prediction needs a macOS worker (coreml queue)"
COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")


def coreml_available() -> bool:
    """Whether this process can run Core ML predictions at all."""
    return sys.platform == "darwin"


class CoreMLRunner(Runner):
    """Runs an ``.mlpackage`` (directory or zip) or ``.mlmodel`` with coremltools."""

    name = "coreml"

    def __init__(self, *, compute_units: str = "ALL", threads: int | None = None) -> None:
        super().__init__(threads=threads)
        if compute_units not in COMPUTE_UNITS:
            raise ValueError(f"compute_units must be one of {COMPUTE_UNITS}")
        self.compute_units = compute_units
        self.device = f"coreml-{compute_units.lower()}"
        self.model: Any = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._input_name = ""
        self._image_input = False

    def _load(self, path: Path | None) -> None:
        if not coreml_available():
            raise RuntimeUnavailable(MACOS_ONLY)
        if path is None:
            raise ValueError("a coreml model needs a file")
        import coremltools as ct

        if path.is_file() and path.suffix == ".zip":
            self._tmp = tempfile.TemporaryDirectory(prefix="coreml-")
            path = find_mlpackage(safe_extract(path, self._tmp.name))
        self.model = ct.models.MLModel(
            str(path), compute_units=getattr(ct.ComputeUnit, self.compute_units)
        )
        first = self.model.get_spec().description.input[0]
        self._input_name = first.name
        self._image_input = first.type.WhichOneof("Type") == "imageType"

    def prepare(self, image_rgb_uint8: np.ndarray) -> tuple[Any, LetterboxInfo]:
        resized, info = resize_for_spec(image_rgb_uint8, self.spec)
        if self._image_input:
            from PIL import Image

            return Image.fromarray(resized, mode="RGB"), info
        return normalise(resized, self.spec), info

    def forward(self, model_input: Any) -> list[NamedOutput]:
        result = self.model.predict({self._input_name: model_input})
        names = [o.name for o in self.model.get_spec().description.output]
        return [NamedOutput(n, np.asarray(result[n], dtype=np.float32)) for n in names]

    def determinism(self) -> Determinism:
        return COREML_DETERMINISM

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
