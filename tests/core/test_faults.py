"""Faults with real workers: a starved reaper, and the database cut and restored mid-run."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

import tests.core.faultkinds  # registers test.steps
import tests.jobkinds  # noqa: F401 - registers test.sleep
from evalsite.core import jobs
from evalsite.core.models import Chunk, Job, JobStatus, ServiceHeartbeat, WorkerHeartbeat
from tests import workers
from tests.core.tcp_proxy import TcpProxy
from tests.workers import wait_for, wait_for_done_hook

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

KINDS = "tests.jobkinds,tests.core.faultkinds"


def live_on(queue: str) -> bool:
    return any(queue in w.queues for w in WorkerHeartbeat.objects.all())


@pytest.mark.no_services
def test_reaper_requeues_a_dead_chunk_while_every_work_slot_is_busy(tmp_path, start_worker):
    period = 1.5
    env = {"JOB_REAPER_SECONDS": str(period), "JOB_LEASE_SECONDS": "30"}
    # Given the only work slot busy with a long chunk ...
    work = start_worker(queues="default", beat=False, include=KINDS, extra_env=env)
    long_job = jobs.job_create(
        kind="test.sleep",
        chunks=[{"folder": str(tmp_path), "seconds": 60}],
        payload={"folder": str(tmp_path)},
    )
    wait_for(
        lambda: Chunk.objects.filter(job=long_job, status=JobStatus.RUNNING).exists(),
        90,
        "the long chunk to start",
        work,
    )
    # ... a chunk whose worker died (claimed, then nothing), and the maintenance worker + beat
    with mock.patch("evalsite.core.tasks.run_chunk.apply_async"):
        dead_job = jobs.job_create(
            kind="test.sleep", chunks=[{"folder": str(tmp_path)}], payload={"folder": "x"}
        )
    dead = jobs.chunk_claim(chunk_id=dead_job.chunks.get().pk, worker="dead-host:1:x")
    assert dead is not None
    maintenance = start_worker(queues="maintenance", beat=True, include=KINDS, extra_env=env)
    wait_for(lambda: live_on("maintenance"), 90, "the maintenance worker", maintenance)
    first = timezone.now()
    wait_for(
        lambda: ServiceHeartbeat.objects.filter(name="beat", last_seen__gt=first).exists(),
        60,
        "a reaper pass",
        maintenance,
    )

    # When the dead chunk's lease runs out
    expires = timezone.now() + timedelta(seconds=0.5)
    Chunk.objects.filter(pk=dead.pk).update(lease_expires_at=expires)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = Chunk.objects.get(pk=dead.pk)
        if row.status != JobStatus.RUNNING:
            break
        time.sleep(0.05)
    requeued_after = (timezone.now() - expires).total_seconds()

    # Then it is requeued within two reaper periods, although the work slot is still busy
    row = Chunk.objects.get(pk=dead.pk)
    assert row.status == JobStatus.PENDING and "lease expired on dead-host" in row.error, (
        maintenance.output()[-3000:]
    )
    assert requeued_after <= 2 * period, f"requeued {requeued_after:.2f} s after lease expiry"
    assert Chunk.objects.get(job=long_job).status == JobStatus.RUNNING, "the slot stayed busy"


def proxied_database_url(port: int) -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@127.0.0.1:{port}/{s['NAME']}"


@pytest.mark.services
def test_a_database_cut_mid_run_costs_no_attempt_and_the_job_finishes_once(
    tmp_path: Path, start_worker
):
    assert workers.test_database_url().startswith("postgres://")
    s = connection.settings_dict
    proxy = TcpProxy(s["HOST"] or "127.0.0.1", int(s["PORT"] or 5432))
    env = {
        "DATABASE_URL": proxied_database_url(proxy.port),
        "JOB_LEASE_SECONDS": "20",
        "JOB_HEARTBEAT_SECONDS": "0.5",
        "JOB_REAPER_SECONDS": "1",
    }
    try:
        # Given a worker and the maintenance worker that reach PostgreSQL through the proxy
        work = start_worker(queues="default", beat=False, include=KINDS, extra_env=env)
        start_worker(queues="maintenance", beat=True, include=KINDS, extra_env=env)
        wait_for(lambda: live_on("default") and live_on("maintenance"), 90, "workers", work)
        job = jobs.job_create(
            kind="test.steps",
            chunks=[{"folder": str(tmp_path), "steps": 25, "step_seconds": 0.1} for _ in range(3)],
            payload={"folder": str(tmp_path)},
        )
        # When the database goes away in the middle of the first chunk, for 3 s
        wait_for(lambda: (tmp_path / "step-0").exists() and
                 int((tmp_path / "step-0").read_text() or 0) >= 5, 90, "chunk 0 mid-way",
                 work)  # fmt: skip
        proxy.cut()
        time.sleep(3)
        proxy.restore()

        # Then the job finishes, its hook runs once, every chunk on its first attempt
        wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, 120, "the job to finish", work)
    finally:
        proxy.close()
    job.refresh_from_db()
    log = work.output()
    assert job.status == JobStatus.DONE, job.error
    wait_for_done_hook(job.pk, work)
    assert (tmp_path / "done.log").read_text().split() == [str(job.pk)]
    chunks = list(Chunk.objects.filter(job=job))
    assert [c.attempts for c in chunks] == [1, 1, 1], log[-4000:]
    assert sum(c.interruptions for c in chunks) >= 1, "the cut interrupted a chunk"
    assert sorted(set((tmp_path / "completed.log").read_text().split())) == ["0", "1", "2"]
    assert proxy.refused >= 1, "connections were refused while cut"
    assert "database unreachable" in log


@pytest.mark.no_services
def test_messages_lost_with_the_broker_are_resent_within_seconds(tmp_path, start_worker):
    # Given a job whose messages the broker lost (a Redis restart without persistence)
    env = {"JOB_REAPER_SECONDS": "1", "JOB_PENDING_RESEND_SECONDS": "300"}
    job = jobs.job_create(
        kind="test.sleep",
        chunks=[{"folder": str(tmp_path)} for _ in range(3)],
        payload={"folder": str(tmp_path)},
    )
    workers.purge_broker()
    assert reaper_depth("default") == 0

    # When the workers come up, nothing is queued for them ...
    work = start_worker(queues="default", beat=False, include=KINDS, extra_env=env)
    start_worker(queues="maintenance", beat=True, include=KINDS, extra_env=env)
    wait_for(lambda: live_on("default") and live_on("maintenance"), 90, "workers", work)
    started = time.monotonic()

    # Then the reaper sees 3 pending chunks and 0 queued messages, resends them, and the job
    # finishes in seconds rather than after the 300 s fallback
    wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, 60, "the job to finish", work)
    assert Job.objects.get(pk=job.pk).status == JobStatus.DONE
    assert time.monotonic() - started < 20
    wait_for_done_hook(job.pk, work)
    assert (tmp_path / "done.log").read_text().split() == [str(job.pk)]


def reaper_depth(queue: str) -> int:
    from evalsite.core.reaper import broker_queue_depths

    depths = broker_queue_depths({queue})
    assert depths is not None
    return depths[queue]


def kill_other_connections() -> int:
    """Terminate every other backend on the test database (a PostgreSQL blip as workers see it)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = cur.fetchone()
    return int(row[0]) if row else 0


@pytest.mark.services
def test_database_blips_under_a_backlog_cost_no_attempt(tmp_path: Path, start_worker):
    """Connections killed every 3 s while 10 jobs queue: every chunk finishes on its first
    attempt. A short lease makes the old failure mode (a retried message waiting behind the
    backlog without a heartbeat, the lease expiring, the reaper requeuing) show within the test."""
    assert workers.test_database_url().startswith("postgres://")
    env = {"JOB_LEASE_SECONDS": "6", "JOB_HEARTBEAT_SECONDS": "0.5", "JOB_REAPER_SECONDS": "1"}
    # Given a worker, the maintenance worker + beat, and 10 jobs of 3 chunks queued
    work = start_worker(queues="default", beat=False, include=KINDS, extra_env=env)
    start_worker(queues="maintenance", beat=True, include=KINDS, extra_env=env)
    wait_for(lambda: live_on("default") and live_on("maintenance"), 90, "workers", work)
    queued = [
        jobs.job_create(
            kind="test.steps",
            chunks=[
                {"folder": str(tmp_path), "steps": 8, "step_seconds": 0.1, "job": j}
                for _ in range(3)
            ],
            payload={"folder": str(tmp_path)},
        )
        for j in range(10)
    ]

    # When every database connection but this one is killed every 3 s for 24 s
    killed = 0
    for _ in range(8):
        time.sleep(3)
        killed += kill_other_connections()

    # Then every job finishes, every chunk on its first attempt
    wait_for(
        lambda: all(j.is_finished for j in Job.objects.filter(pk__in=[q.pk for q in queued])),
        240,
        "the jobs to finish",
        work,
    )
    log = work.output()
    assert killed >= 8, "the loop killed the workers' connections"
    statuses = set(
        Job.objects.filter(pk__in=[q.pk for q in queued]).values_list("status", flat=True)
    )
    assert statuses == {JobStatus.DONE}, log[-4000:]
    attempts = list(Chunk.objects.filter(job__in=queued).values_list("attempts", flat=True))
    assert attempts == [1] * 30, log[-4000:]
