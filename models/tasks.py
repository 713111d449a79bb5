"""Job kinds of the registry, run by `evalsite.core.tasks.run_chunk` on the `default` queue.

Imported by the Celery worker (autodiscovery) and by `RegistryConfig.ready()` so the web process
knows the kinds it enqueues. Handlers take ids from the chunk payload and call one service.
"""

from __future__ import annotations

from typing import Any

from evalsite.core.jobs import register_job_kind
from evalsite.core.models import Chunk, Job
from models.services.conversions import CONVERT_JOB, model_version_convert_now
from models.services.validation import VALIDATE_JOB, model_version_reject, model_version_validate


def _validate_chunk(chunk: Chunk) -> dict[str, Any]:
    version = model_version_validate(
        version_id=chunk.payload["version_id"], limits=chunk.payload.get("limits")
    )
    return {"status": version.status, "reason": version.rejection_reason}


def _validate_failed(job: Job) -> None:
    model_version_reject(
        version_id=job.payload["version_id"], reason=f"validation job failed: {job.error}"
    )


def _convert_chunk(chunk: Chunk) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    user_id = chunk.payload.get("user_id")
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    child = model_version_convert_now(
        source_id=chunk.payload["source_id"], target=chunk.payload["target"], user=user
    )
    return {"child_id": child.pk, "status": child.status, "reason": child.rejection_reason}


register_job_kind(VALIDATE_JOB, run_chunk=_validate_chunk, on_failed=_validate_failed)
register_job_kind(CONVERT_JOB, run_chunk=_convert_chunk)
