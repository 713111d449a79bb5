"""The crash-safe job primitive, driven directly (no worker process)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.utils import timezone

import tests.jobkinds  # noqa: F401 - registers the test job kind
from evalsite.core import jobs, reaper
from evalsite.core.models import Chunk, Job, JobStatus, ServiceHeartbeat

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.no_services]


@pytest.fixture(autouse=True)
def no_broker():
    """Record sends instead of talking to the broker."""
    with mock.patch("evalsite.core.tasks.run_chunk.apply_async") as send:
        yield send


def make_job(tmp_path: Path, n: int = 2, **payload: object) -> Job:
    return jobs.job_create(
        kind="test.sleep",
        chunks=[{"folder": str(tmp_path), **payload} for _ in range(n)],
        payload={"folder": str(tmp_path)},
    )


def test_job_create_enqueues_every_chunk_after_commit(tmp_path, no_broker):
    job = make_job(tmp_path, n=3)
    assert job.chunks.count() == 3
    assert no_broker.call_count == 3
    assert all(c.enqueued_at for c in job.chunks.all())


def test_it_rejects_an_unknown_job_kind():
    with pytest.raises(LookupError, match="no job kind 'nope'"):
        jobs.job_create(kind="nope", chunks=[{}])


def test_a_chunk_is_claimed_only_once(tmp_path):
    job = make_job(tmp_path, n=1)
    chunk_id = job.chunks.get().pk
    first = jobs.chunk_claim(chunk_id=chunk_id, worker="a")
    second = jobs.chunk_claim(chunk_id=chunk_id, worker="b")
    assert first is not None and second is None
    chunk = Chunk.objects.get(pk=chunk_id)
    assert (chunk.status, chunk.claimed_by, chunk.attempts) == (JobStatus.RUNNING, "a", 1)
    assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING


def test_job_finishes_once_when_its_last_chunk_completes(tmp_path):
    job = make_job(tmp_path, n=2)
    a, b = (jobs.chunk_claim(chunk_id=c.pk, worker="w") for c in job.chunks.all())
    assert a and b
    assert jobs.chunk_complete(a, {"x": 1})
    assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING
    assert jobs.chunk_complete(b)
    assert not jobs.chunk_complete(b), "a second completion of the same attempt is refused"
    assert Job.objects.get(pk=job.pk).status == JobStatus.DONE
    assert (tmp_path / "done.log").read_text().splitlines() == [str(job.pk)]


def test_a_stale_owner_cannot_complete_a_reclaimed_chunk(tmp_path):
    job = make_job(tmp_path, n=1)
    stale = jobs.chunk_claim(chunk_id=job.chunks.get().pk, worker="old")
    assert stale
    Chunk.objects.filter(pk=stale.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert reaper.reap()["requeued"] == 1
    fresh = jobs.chunk_claim(chunk_id=stale.pk, worker="new")
    assert fresh and fresh.attempts == 2
    assert not jobs.chunk_complete(stale)
    assert not jobs.chunk_renew(stale)
    assert jobs.chunk_complete(fresh)


def test_a_stale_owner_cannot_fail_or_requeue_a_reclaimed_chunk(tmp_path, no_broker):
    job = jobs.job_create(
        kind="test.sleep", chunks=[{}], payload={"folder": str(tmp_path)}, max_attempts=3
    )
    stale = jobs.chunk_claim(chunk_id=job.chunks.get().pk, worker="old")
    assert stale
    Chunk.objects.filter(pk=stale.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    reaper.reap()
    fresh = jobs.chunk_claim(chunk_id=stale.pk, worker="new")
    assert fresh
    sends = no_broker.call_count
    jobs.chunk_fail(stale, "late failure from the old owner")
    jobs.chunk_fail(stale, "late final failure from the old owner", retry=False)
    chunk = Chunk.objects.get(pk=stale.pk)
    assert (chunk.status, chunk.claimed_by, chunk.error) == (JobStatus.RUNNING, "new", "")
    assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING
    assert no_broker.call_count == sends, "nothing was re-sent for a chunk the old owner lost"


def test_failed_attempts_retry_then_fail_the_job_with_the_reason(tmp_path, no_broker):
    job = jobs.job_create(
        kind="test.sleep", chunks=[{}], payload={"folder": str(tmp_path)}, max_attempts=2
    )
    chunk_id = job.chunks.get().pk
    for attempt in (1, 2):
        chunk = jobs.chunk_claim(chunk_id=chunk_id, worker="w")
        assert chunk and chunk.attempts == attempt
        jobs.chunk_fail(chunk, "ValueError: broken input")
    chunk = Chunk.objects.get(pk=chunk_id)
    job.refresh_from_db()
    assert chunk.status == JobStatus.FAILED and chunk.error == "ValueError: broken input"
    assert job.status == JobStatus.FAILED
    assert "failed after 2 attempt(s): ValueError: broken input" in job.error
    assert "ValueError: broken input" in (tmp_path / "failed.log").read_text()


def test_reaper_fails_a_chunk_whose_worker_died_too_often(tmp_path):
    job = jobs.job_create(
        kind="test.sleep", chunks=[{}], payload={"folder": str(tmp_path)}, max_attempts=1
    )
    chunk = jobs.chunk_claim(chunk_id=job.chunks.get().pk, worker="host:1:abc")
    assert chunk
    Chunk.objects.filter(pk=chunk.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    stats = reaper.reap()
    assert stats["failed"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "worker lost: lease expired on host:1:abc after 1 attempt(s)" in job.error
    assert ServiceHeartbeat.objects.get(name="beat").detail["failed"] == 1


def test_reaper_resends_chunks_whose_message_was_lost(tmp_path, no_broker, settings):
    # When the broker cannot be asked how many messages it holds, the resend interval applies
    # (with a depth to read: tests/core/test_job_completion.py)
    settings.JOB_PENDING_RESEND_SECONDS = 60
    job = make_job(tmp_path, n=1)
    no_broker.reset_mock()
    with mock.patch("evalsite.core.reaper.broker_queue_depths", return_value=None):
        assert reaper.reap()["resent"] == 0
        Chunk.objects.filter(job=job).update(enqueued_at=timezone.now() - timedelta(seconds=61))
        assert reaper.reap()["resent"] == 1
    assert no_broker.call_count == 1


def test_cancel_stops_pending_chunks_and_blocks_claims(tmp_path):
    job = make_job(tmp_path, n=2)
    running = jobs.chunk_claim(chunk_id=job.chunks.first().pk, worker="w")
    assert running
    assert jobs.job_cancel(job=job)
    assert not jobs.job_cancel(job=job)
    assert set(job.chunks.values_list("status", flat=True)) == {JobStatus.CANCELLED}
    assert jobs.chunk_claim(chunk_id=job.chunks.last().pk, worker="w") is None
    assert not jobs.chunk_renew(running), "the worker learns of the cancel at its next heartbeat"


def test_progress_counts_come_from_the_database(tmp_path):
    job = make_job(tmp_path, n=3)
    chunk = jobs.chunk_claim(chunk_id=job.chunks.first().pk, worker="w")
    assert chunk and jobs.chunk_complete(chunk)
    progress = jobs.job_progress(job)
    assert progress["total"] == 3 and progress["done"] == 1 and progress["pending"] == 2


def test_recording_task_writes_an_unhandled_failure_on_the_owning_row(tmp_path):
    from evalsite.core.tasks import RecordingTask

    job = make_job(tmp_path, n=1)

    class OwnedTask(RecordingTask):
        name = "tests.owned"
        owner_model = "core.Job"

    OwnedTask().on_failure(MemoryError("model too large"), "task-id", (job.pk,), {}, None)
    job.refresh_from_db()
    assert job.status == "failed" and job.error == "MemoryError: model too large"


def test_run_chunk_records_an_unhandled_failure_on_its_chunk_and_leaves_retrying_to_the_reaper(
    tmp_path,
):
    from evalsite.core.tasks import run_chunk

    job = make_job(tmp_path, n=1)
    chunk = job.chunks.get()
    Chunk.objects.filter(pk=chunk.pk).update(status="running")
    run_chunk.on_failure(RuntimeError("worker bug"), "task-id", (chunk.pk,), {}, None)
    chunk.refresh_from_db()
    assert chunk.error == "RuntimeError: worker bug" and chunk.status == "running"
