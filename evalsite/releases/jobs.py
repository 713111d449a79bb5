"""The `releases.report` job kind: one chunk builds one release report (core job primitive).

A failure the chunk could not handle is recorded on the report row by the job's failure hook,
so the report page says why it has no numbers.
"""

from __future__ import annotations

from typing import Any

from evalsite.core.jobs import register_job_kind
from evalsite.core.models import Chunk, Job

REPORT_JOB = "releases.report"


def _run(chunk: Chunk) -> dict[str, Any]:
    from evalsite.releases.services.reports import release_report_build

    report = release_report_build(report_id=int(chunk.payload["report_id"]))
    return {"report_id": report.pk, "verdict": report.verdict}


def _failed(job: Job) -> None:
    from evalsite.releases.services.reports import release_report_fail

    release_report_fail(report_id=int(job.payload["report_id"]), reason=job.error or "job failed")


register_job_kind(REPORT_JOB, run_chunk=_run, on_failed=_failed, on_cancelled=_failed)

GATE_JOB = "releases.gate"


def _run_gate(chunk: Chunk) -> dict[str, Any]:
    from evalsite.releases.services.gate import release_gate_advance

    gate = release_gate_advance(gate_id=int(chunk.payload["gate_id"]))
    return {"gate_id": gate.pk, "status": gate.status}


def _gate_failed(job: Job) -> None:
    from evalsite.releases.services.gate import release_gate_fail

    release_gate_fail(gate_id=int(job.payload["gate_id"]), reason=job.error or "job failed")


register_job_kind(GATE_JOB, run_chunk=_run_gate, on_failed=_gate_failed, on_cancelled=_gate_failed)
