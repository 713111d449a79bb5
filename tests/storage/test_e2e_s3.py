"""End to end on object storage: the web stores a set and a model in a bucket on a real S3-protocol
server (moto's standalone server, `tests/support/s3server.py`), and a real Celery worker that
shares no folder with the web evaluates it.

The worker's VAR_DIR (so its MEDIA_ROOT and temporary folder), its cache and its working directory
are empty folders of its own; the web's MEDIA_ROOT is another, which must stay empty. The reference
is the same evaluation on the filesystem store, run in this process first.

PostgreSQL + Redis: the worker and the web share only the database, the broker and the bucket.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from evalsite.core.models import Chunk
from evalsite.datasets.importing import dataset_import
from evalsite.datasets.models import DatasetVersion, Item
from evalsite.env import storages_from_url
from evalsite.evals.models import EvalRun, ItemResult, ResultStatus, RunStatus
from evalsite.evals.services import runner as runners
from evalsite.evals.services.runs import eval_run_start
from models.models import ModelVersion
from pipelines.hashing import sha256_file
from tests.evals.factories import export_tiny_model, register_ready, tiny_spec, write_set_folder
from tests.support.s3server import S3Endpoint
from tests.workers import WorkerProcess, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.services]

QUEUES = "default,torch,onnx"
CHUNK = 2
#: The worker's cache cap: above this test's set and model (well under 1 MB), so it must hold.
CACHE_MAX_MB = 2
#: How long the storage is out of reach in the outage test.
OUTAGE_SECONDS = 10.0
#: 503 answers in a row: more than one request's retries inside boto3, so the chunk sees them.
FAILED_REQUESTS = 12


@dataclass
class RemoteWorker:
    """A worker on "another machine": nothing of the web's on its disk."""

    process: WorkerProcess
    home: Path

    @property
    def _test_dir(self) -> Path:
        # evalsite/settings_test.py: VAR_DIR/test-runs/<TEST_RUN_ID>, which the worker inherits.
        return self.home / "var" / "test-runs" / os.environ["TEST_RUN_ID"]

    @property
    def media(self) -> Path:
        return self._test_dir / "media"

    @property
    def cache(self) -> Path:
        return self.home / "cache"


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """The photos both stores get: bright disks of varied sizes, one photo without a subject."""
    return write_set_folder(tmp_path / "photos", n=9, empty=1)


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    return export_tiny_model(tmp_path / "tiny.pt2")


@pytest.fixture
def reference(photos: Path, model_file: Path, run_inline: Any) -> EvalRun:
    """The evaluation on the filesystem store (this process runs its chunks)."""
    version = register_ready("tiny-fs", "1.0.0", file=model_file, spec=tiny_spec())
    dataset_version = dataset_import(path=photos, name="photos-fs").version
    try:
        run = run_inline(
            eval_run_start(model_version=version, dataset_version=dataset_version, chunk_size=CHUNK)
        )
    finally:
        runners.session_cache_clear()  # its sandbox child holds the filesystem model file
    assert run.status == RunStatus.DONE, run.error
    return run


@pytest.fixture
def web_media(tmp_path: Path) -> Path:
    folder = tmp_path / "web-media"
    folder.mkdir()
    return folder


def use_bucket(settings: Any, endpoint: S3Endpoint, web_media: Path) -> None:
    """From now on this process (the web) stores files in the bucket; MEDIA_ROOT is `web_media`."""
    settings.MEDIA_ROOT = web_media
    settings.STORAGE_URL = endpoint.storage_url
    settings.S3_ENDPOINT_URL = endpoint.url
    settings.S3_REGION = endpoint.region
    settings.STORAGES = {
        **settings.STORAGES,
        "default": storages_from_url(
            "STORAGE_URL", endpoint.storage_url, endpoint_url=endpoint.url,
            region=endpoint.region, access_key=endpoint.access_key,
            secret_key_=endpoint.secret_key,
        ),
    }  # fmt: skip


def stored_set_and_model(photos: Path, model_file: Path) -> tuple[DatasetVersion, ModelVersion]:
    """The same photos and model file, imported and registered through the current store."""
    dataset_version = dataset_import(path=photos, name="photos-s3").version
    version = register_ready("tiny-s3", "1.0.0", file=model_file, spec=tiny_spec())
    return dataset_version, version


def start_remote_worker(start_worker: Any, endpoint: S3Endpoint, tmp_path: Path) -> RemoteWorker:
    home = tmp_path / "worker-home"
    home.mkdir()
    env = {
        **endpoint.env(),
        "VAR_DIR": str(home / "var"),
        "WORKER_CACHE_DIR": str(home / "cache"),
        "WORKER_CACHE_MAX_MB": str(CACHE_MAX_MB),
        "SECRET_KEY": django_settings.SECRET_KEY,
    }
    process = start_worker(queues=QUEUES, include="", extra_env=env, cwd=home)
    wait_for(lambda: _worker_live("torch"), 120, "the worker heartbeat", process)
    return RemoteWorker(process, home)


def per_image(run: EvalRun) -> dict[str, tuple[str, dict[str, float], str]]:
    """Each item's (status, metrics, alpha sha256), by stem (item ids differ between sets)."""
    rows = ItemResult.objects.filter(run=run).values_list(
        "item__stem", "status", "metrics", "alpha_sha256"
    )
    return {stem: (status, metrics, sha) for stem, status, metrics, sha in rows}


def wait_done(run: EvalRun, worker: RemoteWorker, timeout: float = 240) -> EvalRun:
    wait_for(lambda: EvalRun.objects.get(pk=run.pk).is_finished, timeout, "the run", worker.process)
    return EvalRun.objects.get(pk=run.pk)


def test_a_worker_without_the_webs_files_evaluates_a_set_in_the_bucket_like_the_filesystem(
    tmp_path, settings, s3, photos, model_file, reference, web_media, start_worker
):
    # Given a set and a model stored in the bucket by the web, and a worker of its own
    use_bucket(settings, s3, web_media)
    dataset_version, version = stored_set_and_model(photos, model_file)
    worker = start_remote_worker(start_worker, s3, tmp_path)

    # When the set is evaluated
    run = eval_run_start(model_version=version, dataset_version=dataset_version, chunk_size=CHUNK)
    run = wait_done(run, worker)

    # Then the run matches the filesystem store's, image for image and digest for digest
    assert run.status == RunStatus.DONE, run.error
    assert per_image(run) == per_image(reference)
    assert run.output_digest and run.output_digest == reference.output_digest
    assert run.summary["counts"] == reference.summary["counts"]
    # and every file went through the bucket: the web's folder holds nothing, the worker's
    # MEDIA_ROOT nothing, and the run's outputs are objects in the bucket
    assert files_under(web_media) == []
    assert files_under(worker.media) == []
    assert any(key.startswith(f"runs/{run.pk}/") for key in s3.object_keys())
    # and the worker read the set and the model through its cache, which stayed under its cap
    cached = {sha256_file(p) for p in files_under(worker.cache)}
    assert sha256_file(model_file) in cached, "the model file came through the cache"
    stored = Item.objects.filter(version=dataset_version).values_list("image", "mask")
    set_files = {Path(name).stem for pair in stored for name in pair}
    assert set_files <= cached, "each photo and mask came through the cache"
    used = sum(p.stat().st_size for p in files_under(worker.cache))
    assert 0 < used <= CACHE_MAX_MB * 2**20


def test_storage_out_of_reach_for_10_s_mid_run_costs_no_attempt_and_changes_no_result(
    tmp_path, settings, s3, s3_proxy, photos, model_file, reference, web_media, start_worker
):
    # Given a run on a worker that reaches the bucket through a proxy
    use_bucket(settings, s3, web_media)
    dataset_version, version = stored_set_and_model(photos, model_file)
    worker = start_remote_worker(start_worker, s3_proxy.endpoint(s3), tmp_path)
    run = eval_run_start(model_version=version, dataset_version=dataset_version, chunk_size=CHUNK)
    total = dataset_version.items.count()

    # When, with some items done and some not, the storage goes away for 10 s
    _freeze_mid_run(worker.process, run, total)
    s3_proxy.unreachable_for(OUTAGE_SECONDS)
    cut_at = time.monotonic()
    worker.process.thaw()

    # Then the run finishes after the storage is back, with the filesystem store's results,
    # and the worker waited the outage out in place: no chunk spent a second attempt
    run = wait_done(run, worker, timeout=240 + OUTAGE_SECONDS)
    assert run.status == RunStatus.DONE, run.error
    assert time.monotonic() - cut_at >= OUTAGE_SECONDS - 0.5
    assert s3_proxy.refused >= 1, "the worker tried the storage while it was out of reach"
    chunks = list(Chunk.objects.filter(job_id=run.job_id))
    assert {c.attempts for c in chunks} == {1}
    assert sum(c.interruptions for c in chunks) >= 1
    assert per_image(run) == per_image(reference)
    assert run.output_digest == reference.output_digest
    assert files_under(worker.media) == [] and files_under(web_media) == []


def test_a_storage_answering_503_mid_run_costs_no_attempt_and_changes_no_result(
    tmp_path, settings, s3, s3_proxy, photos, model_file, reference, web_media, start_worker
):
    # Given a run on a worker that reaches the bucket through a proxy
    use_bucket(settings, s3, web_media)
    dataset_version, version = stored_set_and_model(photos, model_file)
    worker = start_remote_worker(start_worker, s3_proxy.endpoint(s3), tmp_path)
    run = eval_run_start(model_version=version, dataset_version=dataset_version, chunk_size=CHUNK)

    # When, mid-run, the storage answers 503 to its next requests (more than boto3 retries)
    _freeze_mid_run(worker.process, run, dataset_version.items.count())
    s3_proxy.fail_next(FAILED_REQUESTS)
    worker.process.thaw()

    # Then the chunk waited it out in place and the results are the filesystem store's
    run = wait_done(run, worker)
    assert run.status == RunStatus.DONE, run.error
    assert s3_proxy.failed == FAILED_REQUESTS
    chunks = list(Chunk.objects.filter(job_id=run.job_id))
    assert {c.attempts for c in chunks} == {1}
    assert sum(c.interruptions for c in chunks) >= 1
    assert per_image(run) == per_image(reference)
    assert run.output_digest == reference.output_digest


def test_a_corrupted_object_fails_its_item_with_the_hash_mismatch(
    tmp_path, settings, s3, photos, model_file, web_media, start_worker
):
    # Given a set in the bucket one of whose photos was overwritten with other bytes
    use_bucket(settings, s3, web_media)
    dataset_version, version = stored_set_and_model(photos, model_file)
    items = list(dataset_version.items.order_by("stem"))
    victim, donor = items[1], items[2]
    client = s3.client()
    other = client.get_object(Bucket=s3.bucket, Key=donor.image.name)["Body"].read()
    client.put_object(Bucket=s3.bucket, Key=victim.image.name, Body=other)
    worker = start_remote_worker(start_worker, s3, tmp_path)

    # When the set is evaluated
    run = eval_run_start(model_version=version, dataset_version=dataset_version, chunk_size=CHUNK)
    run = wait_done(run, worker)

    # Then that item failed naming the mismatch, and every other item has the model's result
    assert run.status == RunStatus.DONE, run.error
    failed = ItemResult.objects.get(run=run, item=victim)
    assert failed.status == ResultStatus.FAILED
    expected = victim.image.name.rsplit("/", 1)[-1].split(".")[0]
    assert "corrupt" in failed.error and expected in failed.error, failed.error
    others = ItemResult.objects.filter(run=run).exclude(item=victim)
    assert set(others.values_list("status", flat=True)) == {ResultStatus.OK}
    assert others.count() == len(items) - 1
    # and no chunk was retried for it: a corrupt object is the item's fault, not the storage's
    assert {c.attempts for c in Chunk.objects.filter(job_id=run.job_id)} == {1}


def _freeze_mid_run(worker: WorkerProcess, run: EvalRun, total: int, timeout: float = 120) -> int:
    """Freeze the worker once some of the run's items have results and some do not; returns how
    many have. Frozen (SIGSTOP), it sends nothing more until thawed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ItemResult.objects.filter(run=run).exists():
            worker.freeze()
            done = ItemResult.objects.filter(run=run).count()
            if done < total:
                return done
            worker.thaw()
            raise AssertionError(f"all {total} items finished before the worker was frozen")
        time.sleep(0.02)
    raise AssertionError(f"no item of run {run.pk} finished in {timeout}s\n{worker.output()}")


def _worker_live(queue: str) -> bool:
    from evalsite.core.selectors import workers_by_queue

    return bool(workers_by_queue()[queue].live)
