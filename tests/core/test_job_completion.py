"""Job completion that cannot be lost: job-row lock, reaper safety net, exactly-once hooks.

The forced two-finisher race needs a database with concurrent writers (PostgreSQL); the rest runs
on the embedded default too.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone

import tests.jobkinds  # noqa: F401 - registers the test job kind
from evalsite.core import faults, jobs, reaper
from evalsite.core.models import Chunk, Job, JobStatus
from evalsite.evals.models import EvalRun, RunStatus
from evalsite.evals.services.runs import eval_run_start
from tests.evals.conftest import fake_model, run_inline  # noqa: F401 - fixtures
from tests.evals.factories import tiny_set, tiny_spec, version_row
from tests.threads import run_in_threads

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def no_broker():
    with mock.patch("evalsite.core.tasks.run_chunk.apply_async") as send:
        yield send


def make_job(tmp_path: Path, n: int = 2) -> Job:
    return jobs.job_create(
        kind="test.sleep",
        chunks=[{"folder": str(tmp_path)} for _ in range(n)],
        payload={"folder": str(tmp_path)},
    )


def done_lines(tmp_path: Path) -> list[str]:
    log = tmp_path / "done.log"
    return log.read_text().split() if log.exists() else []


def complete_in_threads(chunks: list[Chunk]) -> list[BaseException]:
    """Complete each chunk in its own thread (own DB connection), all released at once."""
    return run_in_threads(lambda c: jobs.chunk_complete(c, {}), chunks, together=True, timeout=30)


def forced_interleaving(
    barrier: threading.Barrier, checked: threading.Barrier | None = None
) -> Any:
    """Both finishers mark their chunk done (uncommitted) before either checks for open chunks.

    With `checked`, both also finish their check before either commits (only possible without the
    job-row lock, where the second finisher waits inside the check for the first's commit).
    """
    original = jobs.job_finish_if_complete

    def after_mark_done(*, job_id: int) -> None:
        barrier.wait()
        original(job_id=job_id)
        if checked is not None:
            checked.wait()

    return mock.patch.object(jobs, "job_finish_if_complete", after_mark_done)


@pytest.mark.services
def test_two_chunks_finishing_at_the_same_instant_finish_the_job_once(tmp_path):
    # Given a two-chunk job whose chunks are both running
    job = make_job(tmp_path, n=2)
    claimed = [jobs.chunk_claim(chunk_id=c.pk, worker=f"w{c.index}") for c in job.chunks.all()]
    assert all(claimed)

    # When both workers mark their chunk done before either checks for open chunks
    barrier = threading.Barrier(2, timeout=10)
    with forced_interleaving(barrier):
        errors = complete_in_threads([c for c in claimed if c])

    # Then the barrier really was reached by both (the race was forced), and the job finished
    # exactly once: the second finisher waited on the job row and saw the first one's commit
    assert not errors, errors
    assert not barrier.broken
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    assert done_lines(tmp_path) == [str(job.pk)]
    assert job.hook_ran_at is not None


@pytest.mark.services
def test_without_the_job_lock_the_race_leaves_the_job_open_and_the_reaper_finishes_it(tmp_path):
    # Given the same forced interleaving with the job-row lock taken away (the old code path)
    job = make_job(tmp_path, n=2)
    claimed = [jobs.chunk_claim(chunk_id=c.pk, worker=f"w{c.index}") for c in job.chunks.all()]
    barrier = threading.Barrier(2, timeout=10)
    checked = threading.Barrier(2, timeout=10)
    unlocked = mock.patch.object(jobs, "_lock_job", lambda job_id: Job.objects.get(pk=job_id))
    with unlocked, forced_interleaving(barrier, checked):
        assert not complete_in_threads([c for c in claimed if c])

    # Then neither finisher saw the other's chunk done: the job is stuck (the bug is real) ...
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert set(Chunk.objects.filter(job=job).values_list("status", flat=True)) == {"done"}

    # ... and one reaper pass finishes it, running its hook once (a second pass does nothing)
    assert reaper.reap()["finished_jobs"] == 1
    assert reaper.reap()["finished_jobs"] == 0
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and done_lines(tmp_path) == [str(job.pk)]


@pytest.mark.no_services
def test_a_hook_lost_with_its_worker_is_run_by_the_reaper_exactly_once(tmp_path, settings):
    # Given a job whose finishing worker died between the commit and running the hook
    settings.JOB_REAPER_SECONDS = 1
    job = make_job(tmp_path, n=1)
    chunk = jobs.chunk_claim(chunk_id=job.chunks.get().pk, worker="w")
    assert chunk is not None
    with mock.patch.object(jobs, "_after_commit_hook"):
        assert jobs.chunk_complete(chunk, {})
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.hook_ran_at is None and not done_lines(tmp_path)

    # When the reaper runs within its grace period, it leaves the hook to the worker
    assert reaper.reap()["hooks"] == 0

    # Then once the grace period is over it runs the hook, once, however often it passes
    Job.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(seconds=10))
    assert reaper.reap()["hooks"] == 1
    assert reaper.reap()["hooks"] == 0
    assert done_lines(tmp_path) == [str(job.pk)]


@pytest.mark.no_services
def test_a_hook_is_claimed_once_and_a_failed_hook_is_retried(tmp_path, settings):
    job = make_job(tmp_path, n=1)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.DONE, finished_at=timezone.now())
    boom = mock.Mock(side_effect=RuntimeError("disk full"))
    with mock.patch.object(jobs, "_hook_for", return_value=boom):
        assert jobs.job_run_hook(job_id=job.pk) is False  # ran, raised: not recorded
    assert jobs.job_run_hook(job_id=job.pk) is False, "claimed: nobody else runs it meanwhile"
    # The claim of the failed attempt expires after a lease; then it runs, and only once.
    stale = timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS + 1)
    Job.objects.filter(pk=job.pk).update(hook_claimed_at=stale)
    assert jobs.job_run_hook(job_id=job.pk) is True
    assert jobs.job_run_hook(job_id=job.pk) is False
    assert done_lines(tmp_path) == [str(job.pk)]


def _expire_hook_claim(job: Job, settings) -> None:
    stale = timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS + 1)
    Job.objects.filter(pk=job.pk).update(hook_claimed_at=stale)


@pytest.mark.no_services
def test_a_done_hook_that_keeps_failing_fails_the_job_after_bounded_tries(tmp_path, settings):
    # Given a finished job whose done hook can never succeed
    settings.JOB_MAX_HOOK_ATTEMPTS = 3
    job = make_job(tmp_path, n=1)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.DONE, finished_at=timezone.now())
    poison = mock.Mock(side_effect=ValueError("Out of range float values are not JSON compliant"))
    kind = dataclasses.replace(jobs.job_kind("test.sleep"), on_done=poison)

    # When it is tried JOB_MAX_HOOK_ATTEMPTS times (each after the last try's claim expired)
    with mock.patch.dict(jobs._KINDS, {"test.sleep": kind}):
        for tries in (1, 2, 3):
            assert jobs.job_run_hook(job_id=job.pk) is False
            job.refresh_from_db()
            if tries < 3:
                assert job.status == JobStatus.DONE and job.hook_attempts == tries
                assert "not JSON compliant" in job.hook_error
                _expire_hook_claim(job, settings)
        # Then no further try happens, however often the reaper passes
        Job.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(hours=1))
        _expire_hook_claim(job, settings)
        assert reaper.reap()["hooks"] == 0
    assert poison.call_count == 3

    # And the job failed with the exception's message, which its failed hook passed on once
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.hook_ran_at is not None
    assert job.error == (
        "its finishing step failed 3 times: ValueError: Out of range float values are not JSON "
        "compliant"
    )
    assert (tmp_path / "failed.log").read_text() == f"{job.pk}: {job.error}\n"
    assert not done_lines(tmp_path)


@pytest.mark.no_services
def test_a_failed_hook_that_keeps_failing_is_given_up(tmp_path, settings):
    settings.JOB_MAX_HOOK_ATTEMPTS = 2
    job = make_job(tmp_path, n=1)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, finished_at=timezone.now())
    poison = mock.Mock(side_effect=RuntimeError("cannot store"))
    kind = dataclasses.replace(jobs.job_kind("test.sleep"), on_failed=poison)
    with mock.patch.dict(jobs._KINDS, {"test.sleep": kind}):
        assert jobs.job_run_hook(job_id=job.pk) is False
        _expire_hook_claim(job, settings)
        assert jobs.job_run_hook(job_id=job.pk) is False
        _expire_hook_claim(job, settings)
        assert jobs.job_run_hook(job_id=job.pk) is False
    job.refresh_from_db()
    assert poison.call_count == 2
    assert job.status == JobStatus.FAILED and job.hook_ran_at is not None
    assert job.hook_error == "RuntimeError: cannot store"


@pytest.mark.no_services
def test_a_run_whose_job_finished_without_its_summary_is_finalised_by_the_reaper(
    tmp_path,
    fake_model,  # noqa: F811
    settings,
):
    # Given a run whose every chunk is done but whose job never finished (its step was lost)
    settings.JOB_REAPER_SECONDS = 1
    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    run = eval_run_start(model_version=version, dataset_version=tiny_set(tmp_path, n=4),
                         chunk_size=2)  # fmt: skip
    from evalsite.evals.services.execute import eval_chunk_run

    with mock.patch.object(jobs, "job_finish_if_complete"):
        for chunk in Chunk.objects.filter(job_id=run.job_id):
            claimed = jobs.chunk_claim(chunk_id=chunk.pk, worker="w")
            assert claimed is not None
            assert jobs.chunk_complete(claimed, eval_chunk_run(claimed))
    assert EvalRun.objects.get(pk=run.pk).status == RunStatus.RUNNING

    # When the reaper passes (no page is opened)
    stats = reaper.reap()

    # Then the job is done and the run has its summary, computed once
    assert stats["finished_jobs"] == 1
    run = EvalRun.objects.get(pk=run.pk)
    assert run.status == RunStatus.DONE, run.error
    assert run.summary["counts"]["ok"] == run.dataset_version.items.count() > 0
    assert Job.objects.get(pk=run.job_id).hook_ran_at is not None


@pytest.mark.no_services
def test_heartbeat_rides_out_database_errors_and_keeps_renewing(tmp_path, settings):
    settings.JOB_HEARTBEAT_SECONDS = 0.2
    job = make_job(tmp_path, n=1)
    chunk = jobs.chunk_claim(chunk_id=job.chunks.get().pk, worker="w")
    assert chunk is not None
    calls: list[str] = []
    real_renew = jobs.chunk_renew

    def flaky(c: Chunk) -> bool:
        if len(calls) < 4:
            calls.append("error")
            raise OperationalError("server closed the connection unexpectedly")
        calls.append("ok")
        return real_renew(c)

    before = Chunk.objects.get(pk=chunk.pk).lease_expires_at
    with mock.patch.object(jobs, "chunk_renew", flaky), jobs.heartbeat(chunk) as lost:
        deadline = timezone.now() + timedelta(seconds=10)
        while calls.count("ok") < 2 and timezone.now() < deadline:
            threading.Event().wait(0.05)
        assert not lost.is_set()
    assert calls[:4] == ["error"] * 4 and calls.count("ok") >= 2
    assert Chunk.objects.get(pk=chunk.pk).lease_expires_at > before


@pytest.mark.no_services
def test_backoff_doubles_and_is_capped():
    assert [faults.backoff_seconds(n, cap=1.5) for n in (1, 2, 3, 4, 9)] == [0.25, 0.5, 1, 1.5, 1.5]


@pytest.mark.no_services
def test_a_chunk_interrupted_by_the_database_resumes_under_the_same_attempt(tmp_path):
    job = make_job(tmp_path, n=1)
    first = jobs.chunk_claim(chunk_id=job.chunks.get().pk, worker="a")
    assert first is not None
    owner = {"claimed_by": first.claimed_by, "attempts": first.attempts}
    resumed = jobs.chunk_resume(chunk_id=first.pk, worker="b", previous=owner)
    assert resumed is not None
    assert (resumed.attempts, resumed.interruptions, resumed.claimed_by) == (1, 1, "b")
    # the old owner can no longer complete it; a stale resume finds nothing
    assert not jobs.chunk_complete(first, {})
    assert jobs.chunk_resume(chunk_id=first.pk, worker="c", previous=owner) is None
    assert jobs.chunk_complete(resumed, {})


@pytest.mark.no_services
def test_run_chunk_rides_out_a_database_error_in_place_without_an_attempt(tmp_path):
    from evalsite.core.tasks import run_chunk

    # Given a chunk whose handler meets the database gone twice, then succeeds
    job = make_job(tmp_path, n=1)
    chunk_id = job.chunks.get().pk
    kind = jobs.job_kind("test.sleep")
    calls = {"n": 0}

    def flaky(chunk: Chunk) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OperationalError("could not connect to server")
        return kind.run_chunk(chunk)

    # When its one message is delivered (the broker is never asked to retry)
    with (
        mock.patch.object(run_chunk, "retry", side_effect=AssertionError("sent back")),
        mock.patch.dict(jobs._KINDS, {"test.sleep": dataclasses.replace(kind, run_chunk=flaky)}),
    ):
        assert run_chunk.run(chunk_id) == "done"

    # Then it finished on its first attempt, the two interruptions counted
    chunk = Chunk.objects.get(pk=chunk_id)
    assert (chunk.status, chunk.attempts, chunk.interruptions) == (JobStatus.DONE, 1, 2)
    assert calls["n"] == 3
    assert done_lines(tmp_path) == [str(job.pk)]


@pytest.mark.no_services
def test_run_chunk_gives_up_riding_out_after_the_interruption_bound(tmp_path, settings):
    from evalsite.core.tasks import run_chunk

    settings.JOB_MAX_INTERRUPTIONS = 2
    job = jobs.job_create(
        kind="test.sleep", chunks=[{}], payload={"folder": str(tmp_path)}, max_attempts=2
    )
    chunk_id = job.chunks.get().pk
    kind = jobs.job_kind("test.sleep")
    down = mock.Mock(side_effect=OperationalError("could not connect to server"))
    with mock.patch.dict(jobs._KINDS, {"test.sleep": dataclasses.replace(kind, run_chunk=down)}):
        assert run_chunk.run(chunk_id) == "failed"
    assert down.call_count == 3  # the first run and two rides
    chunk = Chunk.objects.get(pk=chunk_id)
    assert (chunk.status, chunk.attempts) == (JobStatus.PENDING, 1), "then it counts as a failure"
    assert "could not connect to server" in chunk.error


@pytest.mark.no_services
def test_a_message_pulled_while_the_database_is_down_is_retried_not_lost(tmp_path):
    from celery.exceptions import Retry

    from evalsite.core.tasks import run_chunk

    job = make_job(tmp_path, n=1)
    chunk_id = job.chunks.get().pk
    down = OperationalError("connection refused")
    with (
        mock.patch.object(jobs, "chunk_claim", side_effect=down),
        mock.patch.object(run_chunk, "retry", return_value=Retry("retry")) as retry,
        pytest.raises(Retry),
    ):
        run_chunk.run(chunk_id)
    assert retry.call_args.kwargs["countdown"] > 0
    assert Chunk.objects.get(pk=chunk_id).attempts == 0
    assert run_chunk.run(chunk_id) == "done"


@pytest.mark.no_services
def test_reaper_resends_only_chunks_the_broker_holds_no_message_for(tmp_path, no_broker, settings):
    # Given 3 pending chunks sent a while ago, of which the broker holds 1 message (restart)
    settings.JOB_REAPER_SECONDS = 1
    settings.JOB_PENDING_RESEND_SECONDS = 300
    job = make_job(tmp_path, n=3)
    Chunk.objects.filter(job=job).update(enqueued_at=timezone.now() - timedelta(seconds=5))
    no_broker.reset_mock()
    with mock.patch.object(reaper, "broker_queue_depths", return_value={"default": 1}):
        stats = reaper.reap()
    # Then two are resent now (not after 300 s), the oldest first
    assert stats["resent"] == 2 and no_broker.call_count == 2
    # and nothing is resent while every pending chunk has its message
    Chunk.objects.filter(job=job).update(enqueued_at=timezone.now() - timedelta(seconds=5))
    with mock.patch.object(reaper, "broker_queue_depths", return_value={"default": 3}):
        assert reaper.reap()["resent"] == 0
    # not even for a backlog older than the resend interval while its messages are queued
    Chunk.objects.filter(job=job).update(enqueued_at=timezone.now() - timedelta(seconds=900))
    with mock.patch.object(reaper, "broker_queue_depths", return_value={"default": 3}):
        assert reaper.reap()["resent"] == 0
    # only when the broker cannot be asked does the resend interval apply
    with mock.patch.object(reaper, "broker_queue_depths", return_value=None):
        assert reaper.reap()["resent"] == 3


@pytest.mark.no_services
def test_broker_queue_depths_reads_the_real_broker(tmp_path, no_broker):
    from evalsite.celery import app

    before = reaper.broker_queue_depths({"maintenance"})
    assert before is not None
    with app.connection_for_write() as conn:
        app.send_task("evalsite.core.tasks.reap_jobs", queue="maintenance", connection=conn)
    try:
        assert reaper.broker_queue_depths({"maintenance"}) == {
            "maintenance": before["maintenance"] + 1
        }
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge("maintenance")
