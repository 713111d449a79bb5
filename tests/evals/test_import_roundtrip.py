"""Acceptance: `python -m pipelines.predict --out` of a platform run's own model on the same set,
imported, gives identical per-image metrics to that worker run (real torch.export model)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from evalsite.evals.models import SORTABLE_METRICS, EvalRun, ItemResult, RunSource
from evalsite.evals.services.runs import eval_run_start
from models.services import model_version_register
from pipelines.predict.cli import main as predict_main
from tests.evals.factories import tiny_model, tiny_set, tiny_spec
from tests.evals.importing import clear_run_folders

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def photos_folder(dv, folder: Path) -> Path:
    """The set's stored photos named by stem, as a device would receive them."""
    folder.mkdir()
    for item in dv.items.all():
        shutil.copyfile(item.image.path, folder / f"{item.stem}{Path(item.image.name).suffix}")
    return folder


def test_imported_predict_output_matches_the_worker_run_image_for_image(tmp_path, run_inline):
    clear_run_folders()
    version = tiny_model(tmp_path)
    dv = tiny_set(tmp_path, n=6, empty=1)
    worker_run = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    assert worker_run.status == "done", worker_run.error

    # the same model, run by `pipelines.predict` "on the device"
    spec_path = tmp_path / "tiny.spec.json"
    spec_path.write_text(json.dumps(tiny_spec()))
    out = tmp_path / "device-out"
    code = predict_main([
        "--model", version.file.path, "--spec", str(spec_path),
        "--images", str(photos_folder(dv, tmp_path / "photos")), "--out", str(out),
    ])  # fmt: skip
    assert code == 0

    # imported as the ONNX-child stand-in would be: a registered version of the same family
    child = model_version_register(
        family=version.family.name,
        version="1.0.0-device",
        file=None,
        spec=None,
        external=True,
        parent=version.version,
    ).version
    stdout = io.StringIO()
    call_command("import_predictions", str(out), "--model", child.ref, "--dataset", dv.spec,
                 "--device", "test machine", stdout=stdout)  # fmt: skip
    imported = EvalRun.objects.get(source=RunSource.IMPORTED)
    assert stdout.getvalue().startswith(f"run {imported.pk}\n")

    worker_rows = {r.item.stem: r for r in ItemResult.objects.filter(run=worker_run)
                   .select_related("item")}  # fmt: skip
    imported_rows = {r.item.stem: r for r in ItemResult.objects.filter(run=imported)
                     .select_related("item")}  # fmt: skip
    assert set(worker_rows) == set(imported_rows) and len(worker_rows) == 7
    for stem, w in worker_rows.items():
        i = imported_rows[stem]
        assert i.metrics == w.metrics, stem  # every gated metric, exactly
        for key in SORTABLE_METRICS:
            assert getattr(i, key) == getattr(w, key), (stem, key)
        assert i.instance_count == w.instance_count and i.gated == w.gated
    assert imported.summary["metrics"] == worker_run.summary["metrics"]
    # the gated no-subject photo is an all-zero PNG: "no subject shown" on both sides
    assert imported.summary["slices"] == worker_run.summary["slices"]
    assert imported.summary["counts"] == worker_run.summary["counts"]
    assert imported.summary["gating"] == worker_run.summary["gating"]
    # and parity against the parent's worker run is perfect
    parity = imported.summary["parity"]
    assert parity["against_run"] == worker_run.pk
    assert parity["min_iou"] == 1.0 and parity["max_abs_diff"] == 0.0
