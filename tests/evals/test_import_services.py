"""Imported run through the REST door and a real Celery worker, on PostgreSQL + Redis (CI).

The other import tests run on the embedded default too; this one needs the servers, so the
import job's chunks, their transactions and the finishing hook are exercised where production
runs them.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsite.core.models import Chunk, JobStatus
from evalsite.evals.models import EvalRun, ItemResult, RunSource, RunStatus
from models.services import model_version_register
from pipelines.metrics import evaluate_pair
from pipelines.metrics.io import read_gray8
from tests.evals.factories import tiny_set, user_with
from tests.evals.importing import write_predictions, zip_folder
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services, pytest.mark.worker]


def test_api_import_is_scored_by_a_worker_on_postgres_and_redis(tmp_path, start_worker):
    # Given an external version, a 9-item set and a zip of predictions (+ device latency)
    from django.db import connection

    assert connection.vendor == "postgresql"
    model_version_register(family="vendor", version="1.0.0", file=None, spec=None, external=True)
    dv = tiny_set(tmp_path, n=8, empty=1)
    folder = write_predictions(dv, tmp_path / "pred", erode=1)
    stems = sorted(p.stem for p in folder.glob("*.png"))
    latency = "image,ms\n" + "".join(f"{s},{20 + i}\n" for i, s in enumerate(stems))
    token = Token.objects.create(user=user_with("researcher")).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    # When CI posts it and a worker consumes the default queue
    response = client.post(reverse("evals:api-run-import"), {
        "model": "vendor:1.0.0", "dataset": dv.spec, "device": "iPhone 15 Pro",
        "file": SimpleUploadedFile("p.zip", zip_folder(folder)),
        "latency": SimpleUploadedFile("latency.csv", latency.encode()),
    }, format="multipart")  # fmt: skip
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    worker = start_worker(queues="default", include="")
    wait_for(lambda: EvalRun.objects.get(pk=run_id).is_finished, 180, "the import", worker)

    # Then every chunk ran once and the run holds one result per item, scored from the PNGs
    run = EvalRun.objects.get(pk=run_id)
    assert run.status == RunStatus.DONE, run.error
    assert run.source == RunSource.IMPORTED
    assert set(Chunk.objects.filter(job_id=run.job_id).values_list("status", flat=True)) == {
        JobStatus.DONE
    }
    rows = ItemResult.objects.filter(run=run).select_related("item")
    assert rows.count() == 9
    for r in rows:
        expected = evaluate_pair(read_gray8(folder / f"{r.item.stem}.png"),
                                 read_gray8(r.item.mask.path) > 127)  # fmt: skip
        assert r.iou == expected["iou"] and r.latency["device"] == "iPhone 15 Pro"
    assert run.summary["latency"]["devices"]["iPhone 15 Pro"]["n"] == 9


@pytest.mark.django_db(transaction=True)
def test_a_set_version_deleted_during_an_import_loses_to_the_import(tmp_path, monkeypatch):
    """Forced interleaving on PostgreSQL: the import holds the set version's row lock from its
    existence check; a deletion started meanwhile waits, then is refused (the run PROTECTs it)."""
    import threading

    from django.db import IntegrityError, connection, connections
    from django.db.models import ProtectedError

    from evalsite.datasets.models import DatasetVersion
    from evalsite.evals.imports import services

    assert connection.vendor == "postgresql"
    version = model_version_register(family="vendor", version="1.0.0", file=None, spec=None,
                                     external=True).version  # fmt: skip
    dv = tiny_set(tmp_path, n=3, empty=0)
    folder = write_predictions(dv, tmp_path / "pred")
    locked, deleting = threading.Event(), threading.Event()
    real_create = services._create_run

    def create_after_a_deletion_started(*args, **kwargs):
        locked.set()  # the import holds the lock now; let the deletion start and block
        assert deleting.wait(10)
        threading.Event().wait(1.0)  # the DELETE is now waiting on our row lock
        return real_create(*args, **kwargs)

    monkeypatch.setattr(services, "_create_run", create_after_a_deletion_started)
    outcome: dict[str, object] = {}

    def delete() -> None:
        try:
            assert locked.wait(10)
            deleting.set()
            DatasetVersion.objects.filter(pk=dv.pk).delete()
            outcome["deleted"] = True
        except (ProtectedError, IntegrityError) as exc:
            outcome["refused"] = type(exc).__name__
        finally:
            connections.close_all()

    thread = threading.Thread(target=delete)
    thread.start()
    run = services.eval_run_import(folder=folder, model_version=version, dataset_version=dv)
    thread.join(30)
    assert run.status == RunStatus.DONE and ItemResult.objects.filter(run=run).count() == 3
    assert "refused" in outcome, outcome
    assert DatasetVersion.objects.filter(pk=dv.pk).exists()
