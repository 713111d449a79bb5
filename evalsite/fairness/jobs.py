"""The `fairness.report` job kind: one chunk per run, computed by a worker on the default queue.

Registered from `FairnessConfig.ready()` so every process (web, CLI, worker) knows the kind.
The handler is idempotent (the report row is overwritten), so a retried chunk is harmless.
"""

from __future__ import annotations

from typing import Any

from evalsite.core.jobs import register_job_kind
from evalsite.core.models import Chunk
from evalsite.fairness.services import FAIRNESS_JOB, fairness_chunk_run


def _run_chunk(chunk: Chunk) -> dict[str, Any]:
    return fairness_chunk_run(int(chunk.payload["run_id"]))


register_job_kind(FAIRNESS_JOB, run_chunk=_run_chunk)
