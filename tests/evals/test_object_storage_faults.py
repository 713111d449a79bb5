# ruff: noqa: F811 - pytest fixtures imported from tests/objectstore.py and tests/evals/conftest.py
"""Object storage unreachable mid-chunk is the infrastructure's fault: the chunk is run again in
place under the same attempt and no item fails; an outage that lasts fails the run naming the
storage, never an item or the model. In process with moto's bucket and the real task function."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from evalsite.core import files
from evalsite.core.models import Chunk
from evalsite.evals.models import ItemResult, ResultStatus, RunStatus
from evalsite.evals.services.runs import eval_run_start
from tests.evals.conftest import fake_model  # noqa: F401 - fixture
from tests.evals.factories import tiny_set, tiny_spec, version_row
from tests.evals.test_infrastructure_faults import run_task
from tests.objectstore import keys, s3_bucket, s3_store  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.no_services]


class Outage:
    """Wraps the S3 client: the chosen (1-based) calls of `method` fail as if the server were
    down (no connection), the others reach moto."""

    def __init__(self, method: str, calls: set[int], exc: Exception) -> None:
        self.method, self.calls, self.exc, self.seen = method, calls, exc, 0
        self.real = files._s3_client

    def client(self, st: Any) -> Any:
        real = self.real(st)
        outage = self

        class Client:
            def __getattr__(self, name: str) -> Any:
                attr = getattr(real, name)
                if name != outage.method:
                    return attr

                def call(*args: Any, **kwargs: Any) -> Any:
                    outage.seen += 1
                    if outage.seen in outage.calls:
                        raise outage.exc
                    return attr(*args, **kwargs)

                return call

        return Client()


def start_run(tmp_path: Any, n: int = 4) -> tuple[Any, int]:
    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    dv = tiny_set(tmp_path, n=n, empty=0)
    run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=8)
    return run, Chunk.objects.get(job_id=run.job_id).pk


@pytest.mark.parametrize(
    ("method", "exc"),
    [
        ("put_object", EndpointConnectionError(endpoint_url="http://s3.test")),
        ("download_fileobj", ConnectionClosedError(endpoint_url="http://s3.test")),
    ],
)
def test_storage_down_for_a_moment_costs_no_attempt_and_fails_no_item(
    tmp_path, s3_store, fake_model, django_capture_on_commit_callbacks, method, exc
):
    # Given a 4-item run on a bucket whose second write (or read) finds the server down
    run, chunk_id = start_run(tmp_path)
    outage = Outage(method, {2}, exc)

    # When its message is delivered
    with (
        mock.patch.object(files, "_s3_client", outage.client),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert run_task(chunk_id) == "done"

    # Then the chunk ran again in place under the same attempt and every item has its result
    chunk = Chunk.objects.get(pk=chunk_id)
    assert (chunk.attempts, chunk.interruptions) == (1, 1)
    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error
    statuses = list(ItemResult.objects.filter(run=run).values_list("status", flat=True))
    assert statuses == [ResultStatus.OK] * 4
    assert len([k for k in keys(s3_store) if f"/runs/{run.pk}/alpha/" in k]) == 4


def test_storage_that_stays_down_fails_the_run_naming_the_storage_never_an_item(
    tmp_path, s3_store, fake_model, settings, django_capture_on_commit_callbacks
):
    settings.JOB_MAX_INTERRUPTIONS = 2
    run, chunk_id = start_run(tmp_path, n=3)
    outage = Outage("put_object", set(range(1, 1000)), EndpointConnectionError(endpoint_url="x"))
    with (
        mock.patch.object(files, "_s3_client", outage.client),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert run_task(chunk_id) == "failed"
    chunk = Chunk.objects.get(pk=chunk_id)
    assert (chunk.attempts, chunk.interruptions) == (1, 2), "no attempt was spent on storage"
    assert chunk.error.startswith("object storage unreachable on worker ")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "object storage unreachable" in run.error
    assert not ItemResult.objects.filter(run=run).exists(), "no item was failed for storage"
