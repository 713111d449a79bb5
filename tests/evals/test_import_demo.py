"""The demo's imported run, end to end on a tiny model: ONNX child, `python -m pipelines.predict`
in a subprocess, latency CSV from its report, import, parity with the parent's worker run."""

from __future__ import annotations

import pytest

from evalsite.evals.imports import demo
from evalsite.evals.models import EvalRun, RunSource, RunStatus
from evalsite.evals.services.runs import eval_run_start
from tests.evals.factories import tiny_model, tiny_set
from tests.evals.importing import clear_run_folders

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def test_demo_imports_the_onnx_childs_predictions_labelled_as_the_demo(
    tmp_path, monkeypatch, run_inline
):
    clear_run_folders()
    version = tiny_model(tmp_path, family="subject-lift", version="1.1.0")
    dv = tiny_set(tmp_path, name="pascal-s-demo", n=4, empty=1)
    parent_run = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    lines: list[str] = []

    run = demo.import_demo_run(lines.append)

    assert run is not None, lines
    assert run.status == RunStatus.DONE and run.source == RunSource.IMPORTED
    assert run.model_version.parent == version and run.model_version.format == "onnx"
    assert "standing in for a device" in run.provenance and "demo" in run.device
    assert run.runtime_label.startswith("onnxruntime ") and run.has_latency
    device = run.summary["latency"]["devices"][run.device]
    assert device["n"] == 5 and device["stages"]["model"]["p50"] > 0
    # ONNX on CPU vs the torch worker: the same alphas up to float noise
    parity = run.summary["parity"]
    assert parity["against_run"] == parent_run.pk and parity["items"] == 5
    assert parity["min_iou"] > 0.99 and parity["max_abs_diff"] <= 2 / 255
    # idempotent: a second demo start reuses it
    assert demo.import_demo_run(lines.append).pk == run.pk
    assert EvalRun.objects.filter(source=RunSource.IMPORTED).count() == 1
    assert any("(unchanged)" in line for line in lines)
