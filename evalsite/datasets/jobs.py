"""Registers the `datasets.import` job kind (imported from DatasetsConfig.ready, so both the web
process that creates jobs and the worker that runs them know it)."""

from __future__ import annotations

from typing import Any

from evalsite.core.jobs import register_job_kind
from evalsite.core.models import Chunk, Job
from evalsite.datasets.services import (
    IMPORT_JOB_KIND,
    dataset_import_run,
    dataset_import_upload_failed,
)


def _run_chunk(chunk: Chunk) -> dict[str, Any]:
    return dataset_import_run(import_id=int(chunk.payload["import_id"]))


def _on_failed(job: Job) -> None:
    dataset_import_upload_failed(import_id=int(job.payload["import_id"]), reason=job.error)


def _on_cancelled(job: Job) -> None:
    dataset_import_upload_failed(
        import_id=int(job.payload["import_id"]), reason=job.error or "cancelled"
    )


register_job_kind(
    IMPORT_JOB_KIND, run_chunk=_run_chunk, on_failed=_on_failed, on_cancelled=_on_cancelled
)
