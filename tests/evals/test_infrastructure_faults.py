"""Faults are not verdicts: a full disk or a model process killed while idle never becomes an
item's result, and a run is "done" only when every item has the model's answer.

In process with the fake model session and the real task function (`run_chunk.run`), so the
task layer's classification is what is tested; the broker's retry is captured, not sent.
"""

from __future__ import annotations

import errno
from typing import Any
from unittest import mock

import pytest

from evalsite.core.models import Chunk, Job, JobStatus
from evalsite.core.tasks import run_chunk
from evalsite.evals.models import EvalRun, ItemResult, ResultStatus, RunStatus
from evalsite.evals.services import execute
from evalsite.evals.services.aggregate import eval_run_finalise
from evalsite.evals.services.runs import eval_run_start
from tests.evals.conftest import item_key
from tests.evals.factories import tiny_model, tiny_set

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.no_services]


def disk_full_on(calls: set[int]) -> Any:
    """`write_item_artefacts` that raises ENOSPC on the given (1-based) calls."""
    real = execute.write_item_artefacts
    seen = {"n": 0}

    def write(*args: Any) -> Any:
        seen["n"] += 1
        if seen["n"] in calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args)

    return write


def run_task(chunk_id: int) -> str:
    """One delivery of the chunk's message; the broker is never asked to send it back."""
    with mock.patch.object(run_chunk, "retry", side_effect=AssertionError("sent back")):
        result: str = run_chunk.run(chunk_id)
    return result


def test_a_disk_full_for_a_moment_costs_no_attempt_and_fails_no_item(
    tmp_path, version, fake_model, django_capture_on_commit_callbacks
):
    # Given a 4-item run in one chunk whose second file write finds the disk full
    dv = tiny_set(tmp_path, n=4, empty=0)
    run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=8)
    chunk_id = Chunk.objects.get(job_id=run.job_id).pk

    # When its message is delivered
    with (
        mock.patch.object(execute, "write_item_artefacts", disk_full_on({2})),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert run_task(chunk_id) == "done"

    # Then the worker waited the fault out and ran the chunk again under the same attempt,
    # and every item has the model's result (none failed for the disk)
    chunk = Chunk.objects.get(pk=chunk_id)
    assert (chunk.attempts, chunk.interruptions) == (1, 1)
    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error
    statuses = list(ItemResult.objects.filter(run=run).values_list("status", flat=True))
    assert statuses == [ResultStatus.OK] * 4
    assert run.summary["counts"] == {"items": 4, "ok": 4, "failed": 0, "gated": 0}


def test_a_disk_that_stays_full_fails_the_run_naming_the_disk_never_the_model(
    tmp_path, version, fake_model, settings, django_capture_on_commit_callbacks
):
    settings.JOB_MAX_INTERRUPTIONS = 2
    dv = tiny_set(tmp_path, n=3, empty=0)
    run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=8)
    chunk_id = Chunk.objects.get(job_id=run.job_id).pk
    with (
        mock.patch.object(execute, "write_item_artefacts", disk_full_on(set(range(1, 100)))),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert run_task(chunk_id) == "failed"
    chunk = Chunk.objects.get(pk=chunk_id)
    assert (chunk.attempts, chunk.interruptions) == (1, 2), "no attempt was spent on the disk"
    assert chunk.error.startswith("disk full on worker ")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "disk full on worker" in run.error and "No space left on device" in run.error
    assert "model" not in run.error.split("disk full")[0]
    assert not ItemResult.objects.filter(run=run).exists(), "no item was failed for the disk"
    assert Job.objects.get(pk=run.job_id).status == JobStatus.FAILED


def test_a_model_process_killed_while_idle_fails_no_item_of_the_next_chunk(
    tmp_path, version, fake_model, run_inline
):
    # Given a worker whose warm model process served one chunk, then was killed while idle
    dv = tiny_set(tmp_path, n=4, empty=0)
    run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=2)
    run_inline(run, only=1)
    assert fake_model.opened == 1
    fake_model.sessions[0].dead = True

    # When the next chunk starts
    run = run_inline(run)

    # Then a fresh process served it and every item has a result from the model
    assert run.status == RunStatus.DONE, run.error
    assert fake_model.opened == 2
    assert set(ItemResult.objects.filter(run=run).values_list("status", flat=True)) == {"ok"}


def test_a_process_killed_mid_chunk_costs_its_image_one_retry_not_a_failure(
    tmp_path, version, fake_model, run_inline
):
    dv = tiny_set(tmp_path, n=3, empty=0)
    victim = list(dv.items.order_by("stem"))[1]
    fake_model.behaviour = {item_key(victim): "crash_once"}
    run = run_inline(eval_run_start(model_version=version, dataset_version=dv, chunk_size=8))
    assert run.status == RunStatus.DONE, run.error
    assert ItemResult.objects.get(run=run, item=victim).status == ResultStatus.OK
    assert run.summary["restarts"] == 1 and fake_model.opened == 2


def test_a_run_missing_an_items_result_is_not_done(tmp_path, version, fake_model, run_inline):
    # Given a run whose chunks all finished, but one item's result row is gone before the
    # run is finalised
    dv = tiny_set(tmp_path, n=3, empty=0)
    run = run_inline(eval_run_start(model_version=version, dataset_version=dv, chunk_size=8))
    EvalRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, summary={})
    lost = ItemResult.objects.filter(run=run).order_by("item__stem").first()
    assert lost is not None
    lost.delete()

    # When it is finalised
    run = eval_run_finalise(run_id=run.pk)

    # Then it fails as incomplete instead of being scored on 2 of its 3 items
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("incomplete: 1 of 3 items have no result from the model")
    assert "metrics" not in run.summary


def test_a_real_model_process_killed_while_idle_is_replaced_before_the_next_chunk(
    tmp_path, run_inline
):
    import os
    import signal

    from evalsite.evals.services import runner as runners

    # Given a real sandboxed torch.export model that served one chunk and stays warm
    version = tiny_model(tmp_path)
    dv = tiny_set(tmp_path, n=4, empty=0)
    runners.session_cache_clear()
    try:
        run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=2)
        run_inline(run, only=1)
        warm = runners._cached["session"]
        assert warm is not None and warm.alive
        pid = warm._runner._proc.pid

        # When its process is killed while idle (between chunks)
        os.kill(pid, signal.SIGKILL)
        warm._runner._proc.join(10)
        assert not warm.alive

        # Then the next chunk runs on a fresh process and no item is blamed for the kill
        run = run_inline(run)
        assert run.status == RunStatus.DONE, run.error
        assert set(ItemResult.objects.filter(run=run).values_list("status", flat=True)) == {"ok"}
        assert run.summary["restarts"] == 0
        fresh = runners._cached["session"]
        assert fresh is not None and fresh._runner._proc.pid != pid
    finally:
        runners.session_cache_clear()
