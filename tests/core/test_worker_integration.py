"""Real worker processes: a job runs to the end, and survives a SIGKILLed worker exactly once.

Runs on whatever broker and database the settings name: the filesystem broker + SQLite by
default, Redis + PostgreSQL in CI's full run.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

import tests.jobkinds  # noqa: F401 - registers the test job kind
from evalsite.core import jobs
from evalsite.core.models import Chunk, Job, JobStatus, WorkerHeartbeat
from tests.workers import wait_for, wait_for_done_hook

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.no_services]


def process_gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split()[2] == "Z"  # a zombie has exited
    except FileNotFoundError:
        return True


def job_status(job: Job) -> str:
    return Job.objects.get(pk=job.pk).status


def test_a_real_worker_runs_a_job_and_writes_its_heartbeat(tmp_path, start_worker):
    worker = start_worker()
    job = jobs.job_create(
        kind="test.sleep", chunks=[{"folder": str(tmp_path)}] * 3, payload={"folder": str(tmp_path)}
    )
    wait_for(lambda: job_status(job) == JobStatus.DONE, 90, "the job to finish", worker)
    wait_for_done_hook(job.pk, worker)
    assert sorted((tmp_path / "completed.log").read_text().split()) == ["0", "1", "2"]
    assert (tmp_path / "done.log").read_text().split() == [str(job.pk)]
    row = wait_for(lambda: WorkerHeartbeat.objects.first(), 30, "a worker heartbeat row", worker)
    assert "default" in row.queues and row.pid == worker.pid
    # It consumed, and reported itself live, only once its sandbox had imported torch.
    assert "sandbox ready: waited" in worker.output()
    # Every log line of the worker says when it was written (faults are read across processes).
    ready = next(line for line in worker.output().splitlines() if "sandbox ready" in line)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO ", ready), ready


def test_sigkilled_worker_loses_no_work_and_the_job_finishes_exactly_once(tmp_path, start_worker):
    # Given a worker busy with the first of three slow chunks
    first = start_worker()
    job = jobs.job_create(
        kind="test.sleep",
        chunks=[{"folder": str(tmp_path), "seconds": 3}] * 3,
        payload={"folder": str(tmp_path)},
    )
    running = wait_for(
        lambda: Chunk.objects.filter(job=job, status=JobStatus.RUNNING).first(),
        90,
        "a chunk to be claimed",
        first,
    )
    children = first.children()
    time.sleep(0.5)

    # When its main process is SIGKILLed mid-chunk, and a new worker starts
    first.kill()
    for pid in children:  # pool children die with their parent (PR_SET_PDEATHSIG)
        wait_for(lambda pid=pid: process_gone(pid), 10, f"child {pid} to die")
    second = start_worker()

    # Then the job finishes, every chunk completed exactly once, the killed one on attempt 2
    wait_for(lambda: job_status(job) == JobStatus.DONE, 120, "the job to finish", second)
    wait_for_done_hook(job.pk, second)
    completed = (tmp_path / "completed.log").read_text().split()
    assert sorted(completed) == ["0", "1", "2"], completed
    assert (tmp_path / "done.log").read_text().split() == [str(job.pk)]
    killed = Chunk.objects.get(pk=running.pk)
    assert killed.attempts == 2 and killed.status == JobStatus.DONE
    assert killed.claimed_by != running.claimed_by
    assert Chunk.objects.filter(job=job, status=JobStatus.DONE).count() == 3
