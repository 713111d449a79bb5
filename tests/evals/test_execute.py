"""Chunk execution and aggregation, in process with a fake model session (fast, no worker)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from evalsite.core import jobs
from evalsite.core.models import Chunk
from evalsite.evals.models import EvalRun, ItemResult, RunStatus
from evalsite.evals.selectors import COREML_WAITING, primary_run, run_progress, waiting_note
from evalsite.evals.services.execute import eval_chunk_run
from evalsite.evals.services.runs import eval_run_cancel, eval_run_start
from models.models import ModelVersion
from tests.evals.conftest import item_key
from tests.evals.factories import tiny_set, tiny_spec, version_row

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.fixture
def version() -> ModelVersion:
    # The fake session never opens a file: a ready row with the tiny model's spec will do.
    return version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())


def test_a_run_scores_every_item_and_summarises_from_the_stored_pngs(
    tmp_path, version, fake_model, run_inline
):
    # Given a set of 7 items (one without a subject) and a run split in chunks of 3
    dv = tiny_set(tmp_path, n=6, empty=1)
    run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=3)
    assert Chunk.objects.filter(job_id=run.job_id).count() == 3

    # When every chunk runs
    run = run_inline(run)

    # Then every item has one ok result, the run is done, and its summary equals the metrics
    # command run on the PNG folder the run wrote (exactly what `predict --out` writes)
    assert run.status == RunStatus.DONE, run.error
    assert ItemResult.objects.filter(run=run, status="ok").count() == 7
    gt = tmp_path / "gt"
    gt.mkdir()
    for item in dv.items.all():
        shutil.copy(item.mask.path, gt / f"{item.stem}.png")
    out = tmp_path / "metrics.json"
    pred = Path(settings.MEDIA_ROOT) / "runs" / str(run.pk) / "alpha"
    cmd = [sys.executable, "-m", "pipelines.metrics", "--pred", str(pred), "--gt", str(gt),
           "--json", str(out), "--workers", "1"]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=settings.BASE_DIR)
    expected = json.loads(out.read_text())["summary"]
    for key, value in expected.items():
        assert run.summary["metrics"][key] == pytest.approx(value, abs=1e-9), key
    assert run.summary["counts"] == {"items": 7, "ok": 7, "failed": 0, "gated": 1}
    assert run.summary["gating"]["no_subject_gated"] == 1
    latency = run.summary["latency"]
    # one warm-up when the session started; later chunks reuse the warm session
    assert latency["warmup_excluded"] == 1 and fake_model.opened == 1
    stages = latency["devices"]["cpu"]["stages"]
    assert set(stages) == {"preprocess", "model", "postprocess", "total"}
    assert stages["model"]["p50"] == pytest.approx(2.0)
    assert "small images" in run.summary["image_size"]["note"]
    assert {row["slice"] for row in run.summary["slices"]["size_bucket"]} >= {"none"}
    assert len(run.curves["precision"]) == 256
    assert primary_run(model_version=version, dataset_version=dv) == run


def test_retried_chunk_does_not_duplicate_results(tmp_path, version, fake_model, run_inline):
    # Given a chunk that ran once but whose completion was lost (worker died after writing)
    dv = tiny_set(tmp_path, n=4, empty=0)
    run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=10)
    chunk = Chunk.objects.get(job_id=run.job_id)
    claimed = jobs.chunk_claim(chunk_id=chunk.pk, worker="first")
    eval_chunk_run(claimed)
    assert ItemResult.objects.filter(run=run).count() == 4
    Chunk.objects.filter(pk=chunk.pk).update(status="pending", claimed_by="")

    # When it is claimed and run again
    run = run_inline(run)

    # Then the rows were overwritten (attempt 2), never duplicated
    assert run.status == RunStatus.DONE
    rows = ItemResult.objects.filter(run=run)
    assert rows.count() == 4
    assert set(rows.values_list("attempt", flat=True)) == {2}


def test_bad_outputs_fail_items_with_a_reason_and_the_run_finishes(
    tmp_path, version, fake_model, run_inline
):
    dv = tiny_set(tmp_path, n=6, empty=0)
    items = list(dv.items.order_by("stem"))
    fake_model.behaviour = {
        item_key(items[0]): "nan",
        item_key(items[1]): "shape",
        item_key(items[2]): "raise",
        item_key(items[3]): "crash",
    }
    run = run_inline(eval_run_start(model_version=version, dataset_version=dv, chunk_size=10))

    assert run.status == RunStatus.DONE, run.error
    errors = dict(ItemResult.objects.filter(run=run).values_list("item__stem", "error"))
    assert "NaN" in errors[items[0].stem]
    assert "shape" in errors[items[1].stem]
    assert "boom on this image" in errors[items[2].stem]
    assert "crashed" in errors[items[3].stem]
    assert errors[items[4].stem] == errors[items[5].stem] == ""
    assert run.summary["counts"]["failed"] == 4 and run.summary["counts"]["ok"] == 2
    # the crash restarted the session, the image was tried once more on a fresh process (where
    # it crashed again, so it is the image's), and the chunk went on with another fresh one
    assert "also on a fresh process" in errors[items[3].stem]
    assert fake_model.opened == 3
    assert run.summary["restarts"] == 2
    failed_png = Path(settings.MEDIA_ROOT) / "runs" / str(run.pk) / "alpha" / f"{items[0].stem}.png"
    assert not failed_png.exists()


def test_a_model_failing_every_item_fails_the_run_with_a_clear_message(
    tmp_path, version, fake_model, run_inline
):
    dv = tiny_set(tmp_path, n=3, empty=0)
    fake_model.fail_load = "torch.export.load: unsupported operator aten::foo"
    run = run_inline(eval_run_start(model_version=version, dataset_version=dv, chunk_size=2))

    assert run.status == RunStatus.FAILED
    assert "the model failed every item (3 of 3)" in run.error
    assert "model could not be loaded: torch.export.load: unsupported operator" in run.error


def test_progress_comes_from_database_counts(tmp_path, version, fake_model, run_inline):
    dv = tiny_set(tmp_path, n=5, empty=0)
    run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=2)
    run = run_inline(run, only=1)
    progress = run_progress(run)
    assert progress["status"] == RunStatus.RUNNING
    assert (progress["done"], progress["items"]) == (2, 5)
    assert progress["chunks"]["done"] == 1 and progress["chunks"]["pending"] == 2


def test_cancel_stops_a_run_and_its_pending_chunks(tmp_path, version, fake_model, run_inline):
    dv = tiny_set(tmp_path, n=4, empty=0)
    run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=2)
    assert eval_run_cancel(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert not Chunk.objects.filter(job_id=run.job_id, status="pending").exists()
    assert not eval_run_cancel(run=run)


def test_coreml_run_without_a_macos_worker_says_it_is_waiting(tmp_path):
    dv = tiny_set(tmp_path, n=2, empty=0)
    spec = tiny_spec()
    spec["format"] = "coreml"
    spec["input"].update({"mean": [0, 0, 0], "std": [1, 1, 1], "scale": 1.0})
    version = version_row("fake", "2.0.0", fmt="coreml", spec=spec)
    run = eval_run_start(model_version=version, dataset_version=dv)
    assert run.queue == "coreml"
    assert waiting_note(run) == COREML_WAITING
    assert run_progress(run)["waiting"] == "waiting for a macOS worker"
    assert EvalRun.objects.get(pk=run.pk).status == RunStatus.QUEUED  # not failed


def test_parity_option_runs_the_onnx_child_and_reports_iou_and_max_difference(
    tmp_path, version, fake_model, run_inline
):
    dv = tiny_set(tmp_path, n=3, empty=0)
    child = version_row("fake", "1.0.0-onnx", fmt="onnx", spec=tiny_spec())
    ModelVersion.objects.filter(pk=child.pk).update(parent=version)
    run = eval_run_start(model_version=version, dataset_version=dv, parity=True)
    child_run = EvalRun.objects.get(parity_of=run)
    assert child_run.queue == "onnx" and child_run.model_version == child

    run_inline(run)
    child_run = run_inline(child_run)

    parity = child_run.summary["parity"]
    assert parity["against_run"] == run.pk and parity["items"] == 3
    assert parity["mean_iou"] == pytest.approx(1.0) and parity["max_abs_diff"] == 0.0
    assert {row["stem"] for row in parity["rows"]} == set(dv.items.values_list("stem", flat=True))


def test_purge_keeps_primary_runs_and_every_number(tmp_path, version, fake_model, run_inline):
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    dv = tiny_set(tmp_path, n=2, empty=0)
    old = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    primary = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    EvalRun.objects.update(finished_at=timezone.now() - timedelta(days=40))
    call_command("purge_run_artefacts", "--older-than-days", "30", stdout=io.StringIO())
    root = Path(settings.MEDIA_ROOT) / "runs"
    assert not (root / str(old.pk)).exists() and (root / str(primary.pk) / "alpha").is_dir()
    old.refresh_from_db()
    assert old.artefacts_purged_at is not None and old.summary["counts"]["ok"] == 2
