"""onnxruntime runner: CoreML EP on macOS, CUDA EP where present, CPU EP always as the fallback.

``auto`` picks the best execution provider this worker has; ``onnx-cpu`` / ``onnx-cuda`` /
``onnx-coreml`` force one and raise :class:`RuntimeUnavailable` when it is missing (a run that
asked for CUDA must not quietly report CPU latency). ``device`` is the provider that actually
heads the session, read back from onnxruntime.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.runners.base import NamedOutput, Runner, RuntimeUnavailable
from pipelines.runners.determinism import Determinism, onnx_determinism, onnx_session_options

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
ONNX_RUNTIMES = ("auto", "cpu", "cuda", "coreml")


def pick_providers(requested: str = "auto", available: list[str] | None = None) -> list[str]:
    """Ordered providers for an InferenceSession (CPU last: the fallback for unsupported ops)."""
    import onnxruntime as ort

    available = list(available if available is not None else ort.get_available_providers())
    cpu = PROVIDERS["cpu"]
    if requested == "auto":
        if sys.platform == "darwin" and PROVIDERS["coreml"] in available:
            return [PROVIDERS["coreml"], cpu]
        if PROVIDERS["cuda"] in available:
            return [PROVIDERS["cuda"], cpu]
        return [cpu]
    if requested not in PROVIDERS:
        raise ValueError(f"unknown onnx runtime {requested!r}; choose one of {ONNX_RUNTIMES}")
    wanted = PROVIDERS[requested]
    if wanted not in available:
        raise RuntimeUnavailable(
            f"onnxruntime on this worker has no {wanted} (available: {', '.join(available)})"
        )
    return [wanted] if wanted == cpu else [wanted, cpu]


class OnnxRunner(Runner):
    """Runs an ONNX model with onnxruntime; outputs keep their graph names."""

    name = "onnxruntime"

    def __init__(self, *, provider: str = "auto", threads: int | None = None) -> None:
        super().__init__(threads=threads)
        self.requested_provider = provider
        self.session: Any = None
        self._input_name = ""
        self._output_names: list[str] = []

    def _load(self, path: Path | None) -> None:
        import onnxruntime as ort

        if path is None:
            raise ValueError("an onnx model needs a file")
        providers = pick_providers(self.requested_provider)
        options = onnx_session_options(ort.SessionOptions())
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1  # one image at a time: parallelism is within ops
        options.log_severity_level = 3  # warnings about EP fallbacks are noise in worker logs
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        head = self.session.get_providers()[0]
        self.device = next((k for k, v in PROVIDERS.items() if v == head), head)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            names = [i.name for i in inputs]
            raise ValueError(f"the ONNX model has {len(inputs)} inputs {names}, expected one image")
        self._input_name = inputs[0].name
        self._output_names = [o.name for o in self.session.get_outputs()]

    def forward(self, model_input: Any) -> list[NamedOutput]:
        x = np.ascontiguousarray(model_input, dtype=np.float32)
        values = self.session.run(self._output_names, {self._input_name: x})
        return [
            NamedOutput(n, np.asarray(v)) for n, v in zip(self._output_names, values, strict=True)
        ]

    def determinism(self) -> Determinism:
        return onnx_determinism(self.device)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["providers"] = list(self.session.get_providers()) if self.session else []
        return info
