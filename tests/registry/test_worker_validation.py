"""The `registry.validate` job in a real worker process: a model that blows past the memory
limit is rejected with the reason, and the same worker stays alive and validates the next one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from evalsite.core.models import Job, JobStatus, WorkerHeartbeat
from models import services
from models.models import ModelVersion, VersionStatus
from tests.registry.tiny_models import spec_for
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.no_services]


def status_of(row: ModelVersion) -> str:
    return ModelVersion.objects.get(pk=row.pk).status


def register(path, version, fmt="torch_export"):
    return services.model_version_register(
        family="subject-lift",
        version=version,
        file=path,
        spec=spec_for(fmt),
        original_filename=path.name,
        validate="job",
    ).version


def test_worker_survives_a_memory_hog_and_validates_the_next_upload(tiny, start_worker):
    worker = start_worker(include="")
    hog = register(tiny["hog"], "9.0.0")
    assert hog.status == VersionStatus.UPLOADED and hog.validation_job is not None

    wait_for(lambda: status_of(hog) == VersionStatus.REJECTED, 120, "the hog's verdict", worker)
    hog.refresh_from_db()
    assert "out of memory" in hog.rejection_reason
    assert "3072 MB limit" in hog.rejection_reason
    # The verdict is the chunk's own write; the job is marked done once the chunk has returned.
    job = Job.objects.filter(pk=hog.validation_job_id)
    wait_for(lambda: job.get().is_finished, 30, "the hog's job to finish", worker)
    assert job.get().status == JobStatus.DONE, job.get().error

    good = register(tiny["pt2"], "9.0.1")
    wait_for(lambda: status_of(good) == VersionStatus.READY, 120, "the next verdict", worker)
    assert worker.proc.poll() is None, "the worker process must still be running"
    beat = WorkerHeartbeat.objects.get()
    assert beat.pid == worker.pid
    assert beat.last_seen > timezone.now() - timedelta(seconds=10), "heartbeat went stale"


def test_a_worker_runs_the_convert_button_job_into_a_validated_child(tiny, start_worker):
    worker = start_worker(include="")
    source = services.model_version_register(
        family="f",
        version="1.0.0",
        file=tiny["pt2"],
        spec=spec_for("torch_export"),
        validate="inline",
    ).version
    job = services.model_version_convert_enqueue(version=source, target="onnx", user=None)
    wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, 120, "the conversion job", worker)
    assert Job.objects.get(pk=job.pk).status == JobStatus.DONE, Job.objects.get(pk=job.pk).error
    child = ModelVersion.objects.get(version="1.0.0+onnx")
    assert (child.status, child.parent_id, child.format) == ("ready", source.pk, "onnx")
