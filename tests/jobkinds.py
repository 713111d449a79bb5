"""Job kinds used by the job-primitive tests; imported by test workers with `--include`."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from evalsite.core.jobs import register_job_kind
from evalsite.core.models import Chunk, Job


def _sleep_and_record(chunk: Chunk) -> dict[str, Any]:
    folder = Path(chunk.payload["folder"])
    (folder / f"start-{chunk.index}-{chunk.attempts}-{os.getpid()}").touch()
    deadline = time.monotonic() + float(chunk.payload.get("seconds", 0))
    while time.monotonic() < deadline:
        time.sleep(0.05)
    if chunk.payload.get("fail"):
        raise RuntimeError(f"chunk {chunk.index} was told to fail")
    with open(folder / "completed.log", "a") as fh:
        fh.write(f"{chunk.index}\n")
    return {"pid": os.getpid()}


def _on_done(job: Job) -> None:
    with open(Path(job.payload["folder"]) / "done.log", "a") as fh:
        fh.write(f"{job.pk}\n")


def _on_failed(job: Job) -> None:
    with open(Path(job.payload["folder"]) / "failed.log", "a") as fh:
        fh.write(f"{job.pk}: {job.error}\n")


register_job_kind("test.sleep", run_chunk=_sleep_and_record, on_done=_on_done, on_failed=_on_failed)
