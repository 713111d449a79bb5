# ruff: noqa: F811 - pytest fixtures imported from tests/objectstore.py and tests/evals/conftest.py
"""Evaluation runs with the set, model and run files in an S3 bucket (moto, in-process): the same
results and digest as on the filesystem, nothing on the local disk but the worker's cache, a
corrupt or missing object fails only its item, and pages stream pictures from the bucket."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from evalsite.core import files
from evalsite.evals.models import EvalRun, ItemResult, ResultStatus, RunStatus
from evalsite.evals.services.runs import eval_run_start
from tests.evals.conftest import fake_model, run_inline  # noqa: F401 - fixtures
from tests.evals.factories import tiny_set, tiny_spec, user_with, version_row
from tests.objectstore import BUCKET, keys, s3_bucket, s3_storages, s3_store  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def results(run: EvalRun) -> dict[str, tuple[str, dict[str, Any], dict[str, Any]]]:
    rows = ItemResult.objects.filter(run=run).select_related("item")
    return {r.item.stem: (r.status, r.metrics, r.artefacts.get("instances")) for r in rows}


def start(version: Any, dv: Any) -> EvalRun:
    return eval_run_start(model_version=version, dataset_version=dv, chunk_size=3)


def test_a_run_on_a_bucket_equals_the_same_run_on_the_filesystem(
    tmp_path,
    settings,
    s3_bucket,
    fake_model,
    run_inline,
):
    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    on_disk = run_inline(start(version, tiny_set(tmp_path / "fs", name="set-fs")))
    assert on_disk.status == RunStatus.DONE, on_disk.error
    disk_ungated = {
        r.item.stem: files.read_bytes(r.artefacts["alpha_ungated"])
        for r in ItemResult.objects.filter(run=on_disk).select_related("item")
    }

    # Switch the store to the bucket; the local disk the worker sees is an empty folder.
    settings.STORAGES = s3_storages()
    settings.MEDIA_ROOT = tmp_path / "media-unused"
    settings.WORKER_CACHE_DIR = tmp_path / "cache"
    settings.WORKER_CACHE_MAX_MB = 1
    files._cache.cache_clear()
    in_bucket = run_inline(start(version, tiny_set(tmp_path / "s3", name="set-s3")))

    assert in_bucket.status == RunStatus.DONE, in_bucket.error
    assert results(in_bucket) == results(on_disk)
    assert in_bucket.output_digest and in_bucket.output_digest == on_disk.output_digest
    assert in_bucket.summary["metrics"] == on_disk.summary["metrics"]
    assert in_bucket.summary["ungated_metrics"] == on_disk.summary["ungated_metrics"]
    # One object per image whose gate changed nothing, named by its record for both roles; an
    # ungated alpha of its own only where the gate changed the alpha.
    rows = list(ItemResult.objects.filter(run=in_bucket).select_related("item"))
    assert any(r.gated for r in rows) and not all(r.gated for r in rows)  # both paths taken
    for r in rows:
        assert (r.artefacts["alpha_ungated"] == r.artefacts["alpha"]) == (not r.gated), r.item.stem
        assert files.read_bytes(r.artefacts["alpha_ungated"]) == disk_ungated[r.item.stem]
    ungated_keys = [k for k in keys(s3_bucket) if f"runs/{in_bucket.pk}/alpha_ungated/" in k]
    assert len(ungated_keys) == sum(r.gated for r in rows)
    stored = keys(s3_bucket)
    assert any(k.startswith("media/cas/") for k in stored)
    assert f"media/runs/{in_bucket.pk}/alpha/" in "\n".join(stored)
    assert not Path(settings.MEDIA_ROOT).exists()  # nothing read from or written to it
    held, count = files.worker_cache().usage()
    assert 0 < held <= 2**20 and count > 0


def test_a_corrupt_object_fails_its_item_naming_the_file_and_the_rest_is_scored(
    tmp_path,
    s3_store,
    fake_model,
    run_inline,
):
    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    dv = tiny_set(tmp_path, name="set-corrupt")
    items = list(dv.items.order_by("pk"))
    bad, gone = items[0], items[1]
    s3_store.put_object(Bucket=BUCKET, Key=f"media/{bad.image.name}", Body=b"flipped bits")
    s3_store.delete_object(Bucket=BUCKET, Key=f"media/{gone.mask.name}")

    run = run_inline(start(version, dv))

    rows = {r.item_id: r for r in ItemResult.objects.filter(run=run)}
    assert rows[bad.pk].status == ResultStatus.FAILED
    assert "CorruptObject" in rows[bad.pk].error and bad.image.name in rows[bad.pk].error
    assert rows[gone.pk].status == ResultStatus.FAILED
    assert "missing" in rows[gone.pk].error and gone.mask.name in rows[gone.pk].error
    others = [r for pk, r in rows.items() if pk not in (bad.pk, gone.pk)]
    assert others and all(r.status == ResultStatus.OK for r in others)
    assert run.status == RunStatus.DONE


def test_pages_stream_set_and_run_pictures_from_the_bucket(
    tmp_path,
    client,
    s3_store,
    fake_model,
    run_inline,
):
    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    run = run_inline(start(version, tiny_set(tmp_path, name="set-pages")))
    client.force_login(user_with("researcher"))
    r = ItemResult.objects.filter(run=run, status=ResultStatus.OK).select_related("item").first()
    assert r is not None

    photo = client.get(reverse("datasets:item_file", args=[r.item_id, "thumb"]))
    assert photo.status_code == 200
    assert b"".join(photo.streaming_content) == files.read_bytes(r.item.thumb.name)
    alpha = client.get(reverse("evals:file", args=[run.pk, r.item_id, "alpha"]))
    assert alpha.status_code == 200 and alpha["Content-Type"] == "image/png"
    assert b"".join(alpha.streaming_content) == files.read_bytes(r.artefacts["alpha"])
    cutout = client.get(reverse("evals:file", args=[run.pk, r.item_id, "web_cutout"]))
    assert cutout.status_code == 200 and cutout["ETag"]
    rgba = np.asarray(Image.open(io.BytesIO(cutout.content)))
    assert rgba.shape[2] == 4
    assert BUCKET not in cutout["ETag"] and "runs/" not in cutout["ETag"]


def test_a_web_upload_of_a_set_is_kept_in_the_bucket_and_imported_by_a_worker(tmp_path, s3_store):
    import zipfile

    from django.core.files.uploadedfile import SimpleUploadedFile

    from evalsite.datasets.models import DatasetImport
    from evalsite.datasets.services import dataset_import_run, dataset_import_upload
    from tests.evals.factories import write_set_folder

    folder = write_set_folder(tmp_path / "upload", 3, empty=0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, arcname=path.relative_to(folder).as_posix())
    upload = SimpleUploadedFile("set.zip", buf.getvalue(), content_type="application/zip")
    imp = dataset_import_upload(name="uploaded", upload=upload, user=user_with("researcher"))
    assert imp.upload.startswith("uploads/") and keys(s3_store, f"media/{imp.upload}")

    assert dataset_import_run(import_id=imp.pk)["outcome"] == "created"
    imp = DatasetImport.objects.get(pk=imp.pk)
    assert imp.version is not None and imp.version.item_count == 3
    assert keys(s3_store, "media/uploads/") == []  # the kept zip is gone once imported
    assert len(keys(s3_store, "media/cas/")) >= 6  # photos and masks, and their web copies


def test_a_model_file_in_the_bucket_is_cached_per_version_and_checked(tmp_path, s3_store):
    from models.files import version_file
    from pipelines.filecache import CorruptObject
    from tests.evals.factories import export_tiny_model, register_ready

    source = export_tiny_model(tmp_path / "tiny.pt2")
    version = register_ready("tiny", "1.0.0", file=source, spec=tiny_spec())
    assert keys(s3_store, f"media/{version.file.name}")
    local = version_file(version)
    assert local is not None and local.read_bytes() == source.read_bytes()
    assert local.suffix == ".pt2"
    s3_store.put_object(Bucket=BUCKET, Key=f"media/{version.file.name}", Body=b"tampered")
    assert version_file(version) == local  # cached per version: not fetched again
    files.worker_cache().path_for(version.file.name, version.sha256).unlink()
    with pytest.raises(CorruptObject, match=version.sha256):
        version_file(version)
