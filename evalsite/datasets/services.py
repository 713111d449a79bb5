"""Write services of held-out sets: the web-upload import job around `dataset_import`.

`dataset_import` (importing.py) is the one import service; this module adds the web door: store
the upload, create a `DatasetImport` row and a crash-safe job (`datasets.import`, queue default),
and run it in a worker with progress written to the row.
"""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from evalsite.core.jobs import job_create
from evalsite.datasets import selectors, storage
from evalsite.datasets.errors import ImportRejected
from evalsite.datasets.importing import ImportResult, dataset_import
from evalsite.datasets.models import DatasetImport, ImportStatus
from pipelines.parse import InvalidInput

IMPORT_JOB_KIND = "datasets.import"
IMPORT_QUEUE = "default"
# Progress is a database write; once per this many items (or second) keeps SQLite writes cheap.
PROGRESS_EVERY_ITEMS = 10
PROGRESS_EVERY_SECONDS = 1.0

__all__ = [
    "IMPORT_JOB_KIND",
    "ImportRejected",
    "ImportResult",
    "dataset_import",
    "dataset_import_run",
    "dataset_import_upload",
    "dataset_import_upload_failed",
]


def dataset_import_upload(
    *, name: str, upload: UploadedFile, user: User, description: str = ""
) -> DatasetImport:
    """Store an uploaded zip and queue its import; the worker does the rest."""
    problem = selectors.set_name_problem(name)
    if problem:
        raise ValueError(problem)
    target = storage.upload_store(upload.chunks())
    try:
        with transaction.atomic():
            imp = DatasetImport.objects.create(
                name=name,
                description=description,
                upload=target,
                original_filename=(upload.name or "")[:255],
                created_by=user,
            )
            # One chunk: an import is one transaction; the chunk's lease + retry make it survive
            # a killed worker (a re-run of a committed import finds the same content: unchanged).
            imp.job = job_create(
                kind=IMPORT_JOB_KIND,
                chunks=[{"import_id": imp.pk}],
                queue=IMPORT_QUEUE,
                payload={"import_id": imp.pk},
                created_by=user,
            )
            imp.save(update_fields=["job"])
    except BaseException:
        storage.upload_remove(target)
        raise
    return imp


def _progress_writer(import_id: int) -> Any:
    last = {"n": -PROGRESS_EVERY_ITEMS, "t": 0.0}

    def write(done: int, total: int) -> None:
        now = time.monotonic()
        if (
            done < total
            and done - last["n"] < PROGRESS_EVERY_ITEMS
            and now - last["t"] < PROGRESS_EVERY_SECONDS
        ):
            return
        last.update(n=done, t=now)
        DatasetImport.objects.filter(pk=import_id).update(
            processed=done, total=total, phase="processing"
        )

    return write


def dataset_import_run(*, import_id: int) -> dict[str, Any]:
    """Run a queued upload import (the `datasets.import` chunk handler calls this).

    A rejected archive is a verdict, not a crash: the row says why and the job completes, so it
    is not retried; so is a value of the upload that does not parse (InvalidInput: the same
    bytes fail the same way every time). Other errors propagate so the job primitive retries.
    """
    DatasetImport.objects.filter(pk=import_id).update(
        status=ImportStatus.RUNNING, phase="checking", error=""
    )
    imp = DatasetImport.objects.get(pk=import_id)
    source = f"web upload {imp.original_filename or storage.upload_label(imp.upload)}"
    try:
        with storage.upload_local(imp.upload) as upload:
            result = dataset_import(
                path=upload,
                name=imp.name,
                user=imp.created_by,
                description=imp.description,
                source_label=source,
                progress=_progress_writer(import_id),
            )
    except (ImportRejected, InvalidInput) as exc:
        DatasetImport.objects.filter(pk=import_id).update(
            status=ImportStatus.FAILED,
            phase="rejected",
            outcome="rejected",
            report=getattr(exc, "report", {}),
            error=str(exc),
            finished_at=timezone.now(),
        )
        storage.upload_remove(imp.upload)
        return {"outcome": "rejected"}
    DatasetImport.objects.filter(pk=import_id).update(
        status=ImportStatus.DONE,
        phase="done",
        outcome=result.outcome,
        version=result.version,
        message=result.message,
        report=result.report,
        finished_at=timezone.now(),
    )
    storage.upload_remove(imp.upload)
    return {"outcome": result.outcome, "version": result.version.pk}


def dataset_import_upload_failed(*, import_id: int, reason: str) -> None:
    """The job failed for good (attempts exhausted, worker lost): say so on the row."""
    imp = DatasetImport.objects.filter(pk=import_id).first()
    if imp is None or imp.is_finished:
        return
    DatasetImport.objects.filter(pk=import_id).update(
        status=ImportStatus.FAILED, phase="failed", error=reason, finished_at=timezone.now()
    )
    storage.upload_remove(imp.upload)
