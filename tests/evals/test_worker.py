"""Runs through real worker processes and the registry's sandbox (real torch.export model).

Runs on whatever broker and database the settings name: the filesystem broker + SQLite by
default, Redis + PostgreSQL in CI's full run.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from evalsite.core.models import Chunk, JobStatus
from evalsite.evals.models import EvalRun, ItemResult, RunStatus
from evalsite.evals.services.runs import eval_run_start
from pipelines.metrics import MetricAggregator
from pipelines.metrics.io import Pair, load_pair
from pipelines.metrics.registry import image_means
from tests.evals.factories import tiny_model, tiny_set
from tests.workers import WorkerProcess, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.no_services]

QUEUES = "default,torch,onnx"


def run_status(run_id: int) -> str:
    return EvalRun.objects.get(pk=run_id).status


def test_run_eval_wait_evaluates_a_real_model_through_a_worker(tmp_path, start_worker):
    # Given a tiny exported model, a 7-item set and a live worker on the model queues
    version = tiny_model(tmp_path)
    dv = tiny_set(tmp_path, n=6, empty=1)
    worker = start_worker(queues=QUEUES, include="")
    wait_for(lambda: _worker_live("torch"), 60, "the worker heartbeat", worker)

    # When a researcher runs `run_eval --wait --json`
    out = io.StringIO()
    call_command(
        "run_eval", "--model", version.ref, "--dataset", dv.spec, "--wait", "--timeout", "240",
        "--json", stdout=out,
    )  # fmt: skip

    # Then the run finished with one result per item, from the sandboxed model on the CPU
    document = json.loads(out.getvalue())
    run = EvalRun.objects.get(pk=document["id"])
    assert run.status == RunStatus.DONE, run.error
    assert document["status"] == "done" and len(document["per_image"]) == 7
    assert ItemResult.objects.filter(run=run, status="ok").count() == 7
    assert run.device == "cpu"
    assert run.summary["metrics"]["iou"] > 0.8
    assert run.summary["counts"]["gated"] == 1  # the no-subject photo
    assert run.environment["workers"] and run.environment["platform_commit"] is not None
    # and the summary is MetricAggregator over the stored PNGs, file for file
    agg = MetricAggregator()
    for r in ItemResult.objects.filter(run=run).select_related("item"):
        pair = Pair(r.item.stem, Path(settings.MEDIA_ROOT) / r.artefacts["alpha"],
                    Path(r.item.mask.path))  # fmt: skip
        pred, gt, _ = load_pair(pair)
        agg.update(pred, gt, r.item.stem)
    # (plus the registry's per-image means the command's summary does not carry)
    out = agg.compute()
    assert {**out["summary"], **image_means(out["per_image"])} == pytest.approx(
        run.summary["metrics"]
    )


def test_sigkilled_worker_mid_run_leaves_exactly_one_result_per_item(tmp_path, start_worker):
    # Given a run of 8 items in chunks of 2, and a worker busy with its first chunk
    version = tiny_model(tmp_path)
    dv = tiny_set(tmp_path, n=8, empty=0)
    run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=2)
    first = start_worker(queues=QUEUES, include="")
    running = _frozen_mid_chunk(first, run.job_id)

    # When the worker's main process is SIGKILLed mid-chunk and a new worker starts
    first.kill()
    second = start_worker(queues=QUEUES, include="")

    # Then the run finishes with exactly one result per item; the killed chunk ran again
    wait_for(lambda: run_status(run.pk) == RunStatus.DONE, 240, "the run to finish", second)
    rows = ItemResult.objects.filter(run=run)
    assert rows.count() == 8
    assert sorted(rows.values_list("item_id", flat=True)) == sorted(
        dv.items.values_list("pk", flat=True)
    )
    assert set(rows.values_list("status", flat=True)) == {"ok"}
    killed = Chunk.objects.get(pk=running.pk)
    assert killed.status == JobStatus.DONE and killed.attempts >= 2
    assert EvalRun.objects.get(pk=run.pk).summary["counts"]["ok"] == 8


def _frozen_mid_chunk(worker: WorkerProcess, job_id: int, timeout: float = 120) -> Chunk:
    """Freeze `worker` while it holds a running chunk of the job, and return that chunk.

    A chunk of tiny images can finish between two polls, so a fixed sleep before the kill raced
    (the "killed" chunk was already done). Frozen (SIGSTOP), the worker commits nothing more; if
    the chunk seen running finished just before, the worker is thawed and the next one is tried.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = Chunk.objects.filter(job_id=job_id, status=JobStatus.RUNNING).first()
        if seen is not None:
            worker.freeze()
            if Chunk.objects.filter(pk=seen.pk, status=JobStatus.RUNNING).exists():
                return seen
            worker.thaw()
        time.sleep(0.01)
    raise AssertionError(f"no chunk of job {job_id} was caught running\n{worker.output()[-4000:]}")


def _worker_live(queue: str) -> bool:
    from evalsite.core.selectors import workers_by_queue

    return bool(workers_by_queue()[queue].live)
