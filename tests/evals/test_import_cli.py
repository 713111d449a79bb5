"""`import_predictions`: scored like a worker run, with device metadata, latency and parity;
every bad input refused with the file named and nothing created."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from evalsite.evals.errors import EvalError
from evalsite.evals.imports.checks import ImportRefused
from evalsite.evals.imports.services import eval_run_import
from evalsite.evals.models import EvalRun, ItemResult, RunSource, RunStatus
from evalsite.evals.selectors import primary_run
from evalsite.evals.services.runs import eval_run_start
from models.services import model_version_register
from pipelines.metrics import evaluate_pair
from pipelines.metrics.io import read_gray8
from tests.evals.factories import tiny_set
from tests.evals.importing import clear_run_folders, nothing_created, write_predictions

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.fixture(autouse=True)
def _fresh_media():
    clear_run_folders()


def run_cli(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_predictions", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        run_cli(*args)
    assert caught.value.returncode == 1
    return str(caught.value)


def test_import_scores_every_item_from_the_png_bytes_and_records_the_device(tmp_path, dv, version):
    folder = write_predictions(dv, tmp_path / "pred", erode=2)
    out, _ = run_cli(
        str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec, "--device", "iPhone 15 Pro",
        "--os", "iOS 18.1", "--runtime-label", "Core ML 8", "--compute-units", "cpuAndNeuralEngine",
    )  # fmt: skip
    run = EvalRun.objects.get()
    assert out.splitlines()[0] == f"run {run.pk}"
    assert run.status == RunStatus.DONE and run.source == RunSource.IMPORTED
    assert (run.device, run.os, run.runtime_label, run.compute_units) == (
        "iPhone 15 Pro", "iOS 18.1", "Core ML 8", "cpuAndNeuralEngine",
    )  # fmt: skip
    # every per-image number is evaluate_pair of the imported PNG against the stored mask
    for r in ItemResult.objects.filter(run=run).select_related("item"):
        pred = read_gray8(folder / f"{r.item.stem}.png")
        expected = evaluate_pair(pred, read_gray8(Path(r.item.mask.path)) > 127)
        assert r.status == "ok" and r.iou == pytest.approx(expected["iou"], abs=0)
        assert r.mae == pytest.approx(expected["mae"], abs=0)
        assert set(r.artefacts) == {"alpha", "alpha_ungated", "instances"}
    # the no-subject item's empty mask is an all-zero PNG: counted as "no subject shown"
    assert run.summary["counts"] == {"items": 6, "ok": 6, "failed": 0, "gated": 1}
    assert run.summary["gating"]["no_subject_gated"] == 1
    assert 0.5 < run.summary["metrics"]["iou"] < 1.0  # eroded masks: imperfect, not zero
    assert run.summary["slices"]["size_bucket"]
    # no latency CSV: no latency, never zeros
    assert run.has_latency is False and run.summary["latency"]["devices"] == {}
    # a version the workers run keeps its worker run as primary; imported numbers are a claim
    assert primary_run(model_version=version, dataset_version=dv) is None


def test_an_external_versions_imported_run_is_its_primary_run(tmp_path, dv):
    external = model_version_register(family="vendor", version="2024.6", file=None, spec=None,
                                      external=True).version  # fmt: skip
    folder = write_predictions(dv, tmp_path / "pred")
    run_cli(str(folder), "--model", external.ref, "--dataset", dv.spec)
    assert primary_run(model_version=external, dataset_version=dv) == EvalRun.objects.get()


def test_latency_csv_gives_percentiles_labelled_with_the_device(tmp_path, dv, version):
    folder = write_predictions(dv, tmp_path / "pred")
    stems = sorted(dv.items.values_list("stem", flat=True))
    ms = {s: 10.0 + i for i, s in enumerate(stems)}
    csv_path = tmp_path / "latency.csv"
    csv_path.write_text("image,ms,model_ms\n" + "".join(
        f"{s}.jpg,{ms[s]},{ms[s] - 1}\n" for s in stems))  # fmt: skip
    run_cli(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec, "--latency",
            str(csv_path), "--device", "Pixel 9")  # fmt: skip
    run = EvalRun.objects.get()
    assert run.has_latency
    device = run.summary["latency"]["devices"]["Pixel 9"]
    assert device["n"] == 6
    values = np.array(list(ms.values()))
    assert device["stages"]["total"]["p50"] == pytest.approx(np.percentile(values, 50))
    # 6 images: the tail is the slowest one, named "max"; no p99 is stored for so few
    assert device["stages"]["total"]["p99"] is None
    assert device["stages"]["total"]["tail"] == "max"
    assert device["stages"]["total"]["max"] == device["stages"]["total"]["tail_ms"] == max(values)
    assert device["stages"]["model"]["mean"] == pytest.approx(values.mean() - 1)
    assert "preprocess" not in device["stages"]  # not measured: absent, not zero


def test_json_output_is_the_run_document_with_the_import_metadata(tmp_path, dv, version):
    from tests.evals.factories import user_with

    user_with("researcher", "ios-team")
    folder = write_predictions(dv, tmp_path / "pred")
    assert "--user nobody: no such user" in refused(
        str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec, "--user", "nobody"
    )
    out, _ = run_cli(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec, "--json",
                     "--provenance", "exported by the app team", "--user", "ios-team")  # fmt: skip
    document = json.loads(out)
    assert document["source"] == "imported" and document["status"] == "done"
    assert document["imported"]["provenance"] == "exported by the app team"
    assert document["imported"]["imported_by"] == "ios-team"
    assert document["imported"]["files"] == 6 and len(document["per_image"]) == 6
    assert document["summary"]["metrics"]["iou"] == pytest.approx(1.0)


def test_parity_with_the_parent_versions_worker_run(tmp_path, dv, version, fake_model, run_inline):
    # Given a finished worker run of the parent and its child's predictions = the parent's PNGs
    parent_run = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    child = model_version_register(family="fake", version="1.0.0-device", file=None, spec=None,
                                   external=True, parent="1.0.0").version  # fmt: skip
    folder = tmp_path / "device"
    shutil.copytree(_alpha_dir(parent_run), folder)
    # one image differs on the device: a 10×10 block flipped
    stem = sorted(p.stem for p in folder.glob("*.png"))[0]
    a = read_gray8(folder / f"{stem}.png").copy()
    a[:10, :10] = 255 - a[:10, :10]
    Image.fromarray(a).save(folder / f"{stem}.png")
    run_cli(str(folder), "--model", child.ref, "--dataset", dv.spec)
    run = EvalRun.objects.get(source=RunSource.IMPORTED)
    assert run.parity_of_id == parent_run.pk
    parity = run.summary["parity"]
    assert parity["against_run"] == parent_run.pk and parity["items"] == 6
    assert parity["compared"] == "shipped (gated) alphas"
    assert parity["max_abs_diff"] > 0.5
    worst = parity["rows"][0]
    assert worst["stem"] == stem and worst["iou"] < 1.0
    assert all(r["iou"] == 1.0 and r["max_abs_diff"] == 0 for r in parity["rows"][1:])


def test_parity_run_can_be_chosen_and_is_checked(tmp_path, dv, version, fake_model, run_inline):
    other = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    folder = write_predictions(dv, tmp_path / "pred")
    elsewhere = tiny_set(tmp_path, name="other-set", n=2, empty=0)
    queued = eval_run_start(model_version=version, dataset_version=elsewhere)
    message = refused(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec,
                      "--parity-run", str(queued.pk))  # fmt: skip
    assert f"parity run #{queued.pk} is on another set version" in message
    assert EvalRun.objects.filter(source=RunSource.IMPORTED).count() == 0
    run_cli(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec, "--parity-run",
            str(other.pk))  # fmt: skip
    run = EvalRun.objects.get(source=RunSource.IMPORTED)
    assert run.parity_of_id == other.pk and run.summary["parity"]["items"] == 6


def test_a_folder_that_does_not_exist_is_named(tmp_path, dv, version):
    message = refused(str(tmp_path / "nowhere"), "--model", "fake:1.0.0", "--dataset", dv.spec)
    assert "nowhere: no such folder" in message
    nothing_created()


def _alpha_dir(run: EvalRun) -> Path:
    from django.conf import settings

    return Path(settings.MEDIA_ROOT) / "runs" / str(run.pk) / "alpha"


# --- bad input: exit 1, the file named, nothing created ---------------------------------------


def test_missing_stems_are_listed(tmp_path, dv, version):
    folder = write_predictions(dv, tmp_path / "pred")
    stems = sorted(p.name for p in folder.glob("*.png"))
    for name in stems[:2]:
        (folder / name).unlink()
    message = refused(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec)
    assert "2 image(s)" in message and stems[0] in message and stems[1] in message
    nothing_created()


def test_missing_stems_list_stops_at_twenty(tmp_path, version):
    dv = tiny_set(tmp_path, name="big", n=25, empty=0)
    folder = tmp_path / "pred"
    folder.mkdir()
    message = refused(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec)
    assert "no prediction PNGs found" in message  # empty folder
    write_predictions(dv, folder)
    for path in sorted(folder.glob("*.png"))[:23]:
        path.unlink()
    message = refused(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec)
    assert "23 image(s)" in message and "(+3 more)" in message
    nothing_created()


def test_extra_stems_are_listed_and_ignore_extra_accepts_them(tmp_path, dv, version):
    folder = write_predictions(dv, tmp_path / "pred")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "stranger.png")
    message = refused(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec)
    assert "stranger.png" in message and "--ignore-extra" in message
    nothing_created()
    run_cli(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec, "--ignore-extra")
    run = EvalRun.objects.get()
    assert run.environment["import"]["ignored_extra"] == ["stranger"]
    assert run.results.count() == 6


def test_png_of_another_size_names_both_sizes(tmp_path, dv, version):
    folder = write_predictions(dv, tmp_path / "pred")
    item = dv.items.order_by("stem").first()
    Image.fromarray(np.zeros((7, 9), np.uint8)).save(folder / f"{item.stem}.png")
    message = refused(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec)
    assert f"{item.stem}.png: prediction is 9×7 but the photo is {item.width}×{item.height}" in (
        message
    )
    nothing_created()


def test_non_png_file_is_refused(tmp_path, dv, version):
    folder = write_predictions(dv, tmp_path / "pred")
    item = dv.items.order_by("stem").first()
    (folder / f"{item.stem}.png").unlink()
    mask = read_gray8(Path(item.mask.path))
    Image.fromarray(mask).save(folder / f"{item.stem}.jpg")
    message = refused(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec)
    assert f"not PNG files: {item.stem}.jpg" in message
    # a JPEG hiding behind a .png name is refused too
    (folder / f"{item.stem}.jpg").rename(folder / f"{item.stem}.png")
    message = refused(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec)
    assert f"{item.stem}.png: not a PNG (found JPEG data)" in message
    nothing_created()


def test_unreadable_png_is_refused(tmp_path, dv, version):
    folder = write_predictions(dv, tmp_path / "pred")
    item = dv.items.order_by("stem").first()
    data = (folder / f"{item.stem}.png").read_bytes()
    (folder / f"{item.stem}.png").write_bytes(data[: len(data) // 2])
    message = refused(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec)
    assert f"{item.stem}.png" in message and "cannot read" in message
    nothing_created()


def test_sixteen_bit_png_is_scaled_with_a_note(tmp_path, dv, version):
    folder = write_predictions(dv, tmp_path / "pred")
    item = dv.items.exclude(size_bucket="none").order_by("stem").first()
    mask8 = read_gray8(folder / f"{item.stem}.png")
    wide = mask8.astype(np.uint16) * 257  # 255 → 65535
    wide[0, 0] = 32896  # 128 · 257 - 0: round(v / 257) = 128
    Image.fromarray(wide).save(folder / f"{item.stem}.png")
    out, _ = run_cli(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec)
    assert f"note: {item.stem}.png: 16-bit PNG, scaled to 8 bit as round(v / 257)" in out
    run = EvalRun.objects.get()
    stored = read_gray8(_alpha_dir(run) / f"{item.stem}.png")
    expected = mask8.copy()
    expected[0, 0] = 128
    assert np.array_equal(stored, expected)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "RGB"])
def test_colour_png_uses_the_alpha_channel_or_luminance_with_a_note(tmp_path, dv, version, mode):
    folder = write_predictions(dv, tmp_path / "pred")
    item = dv.items.exclude(size_bucket="none").order_by("stem").first()
    mask = read_gray8(folder / f"{item.stem}.png")
    h, w = mask.shape
    if mode == "RGBA":  # a cutout: photo-coloured pixels, the alpha in the fourth channel
        image = np.dstack([np.full((h, w, 3), 77, np.uint8), mask])
    elif mode == "LA":
        image = np.dstack([np.full((h, w), 200, np.uint8), mask])
    else:
        image = np.dstack([mask, mask, mask])
    Image.fromarray(image, mode=mode).save(folder / f"{item.stem}.png")
    out, _ = run_cli(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec)
    expected_note = "read its luminance" if mode == "RGB" else "read its alpha channel"
    assert f"note: {item.stem}.png: {mode} PNG" in out and expected_note in out
    run = EvalRun.objects.get()
    assert np.array_equal(read_gray8(_alpha_dir(run) / f"{item.stem}.png"), mask)
    assert run.results.get(item=item).iou == 1.0


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("image,ms\nnobody,3\n", "images not in the set: nobody"),
        ("image,ms\n{first},fast\n", "row 2 ms: 'fast' is not a number"),
        ("image,ms\n{first},nan\n", "row 2 ms: 'nan' is not a finite number"),
        ("image,ms\n{first},-1\n", "row 2 ms: '-1' is negative"),
        # finite, but overflows the run's latency sums to infinity, which cannot be stored
        ("image,ms\n{first},1e308\n", "row 2 ms: '1e308' ms is more than one hour per image"),
        ("picture,time\n", "needs the columns image,ms"),
    ],
)
def test_bad_latency_csv_is_refused_naming_the_row(tmp_path, dv, version, csv_text, message):
    folder = write_predictions(dv, tmp_path / "pred")
    first = dv.items.order_by("stem").first().stem
    path = tmp_path / "lat.csv"
    path.write_text(csv_text.format(first=first))
    text = refused(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec, "--latency",
                   str(path))  # fmt: skip
    assert "lat.csv" in text and message in text
    nothing_created()


def test_symlinked_prediction_is_refused(tmp_path, dv, version):
    folder = write_predictions(dv, tmp_path / "pred")
    item = dv.items.order_by("stem").first()
    (folder / f"{item.stem}.png").rename(tmp_path / "elsewhere.png")
    (folder / f"{item.stem}.png").symlink_to(tmp_path / "elsewhere.png")
    message = refused(str(folder), "--model", "fake:1.0.0", "--dataset", dv.spec)
    assert f"symbolic links are not read: {item.stem}.png" in message
    nothing_created()


@pytest.mark.parametrize(
    ("model", "dataset", "message"),
    [
        ("nobody:1.0.0", "tiny-set", "--model: No model family 'nobody'"),
        ("fake:9.9.9", "tiny-set", "--model: fake has no version '9.9.9'"),
        ("fake:1.0.0", "no-such-set", "--dataset: no set named 'no-such-set'"),
        ("fake:1.0.0", "tiny-set:deadbeef", "--dataset: set 'tiny-set' has no version deadbeef"),
    ],
)
def test_unknown_model_or_set_is_refused(tmp_path, dv, version, model, dataset, message):
    folder = write_predictions(dv, tmp_path / "pred")
    assert message in refused(str(folder), "--model", model, "--dataset", dataset)
    nothing_created()


def test_a_set_version_deleted_meanwhile_is_refused(tmp_path, dv, version):
    folder = write_predictions(dv, tmp_path / "pred")
    spec = dv.spec
    from evalsite.datasets.models import DatasetVersion

    DatasetVersion.objects.filter(pk=dv.pk).delete()
    with pytest.raises(ImportRefused) as caught:
        eval_run_import(folder=folder, model_version=version, dataset_version=dv)
    assert f"set version {spec} no longer exists" in str(caught.value)
    nothing_created()


def test_a_failure_while_scoring_leaves_nothing(tmp_path, dv, version, monkeypatch):
    folder = write_predictions(dv, tmp_path / "pred")
    from evalsite.evals.imports import services

    calls = {"n": 0}
    real = services.score_output

    def flaky(**kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(services, "score_output", flaky)
    with pytest.raises(OSError):
        eval_run_import(folder=folder, model_version=version, dataset_version=dv)
    nothing_created()


def test_external_version_is_never_started_on_a_worker(dv):
    external = model_version_register(family="vendor", version="2024.6", file=None, spec=None,
                                      external=True).version  # fmt: skip
    with pytest.raises(EvalError) as caught:
        eval_run_start(model_version=external, dataset_version=dv)
    assert "predictions imported, not run here" in str(caught.value)
    assert EvalRun.objects.count() == 0
