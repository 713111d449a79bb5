"""Job kinds of the fault tests; imported by test workers with `--include tests.core.faultkinds`."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from evalsite.core.jobs import register_job_kind
from evalsite.core.models import Chunk, Job


def _steps_with_queries(chunk: Chunk) -> dict[str, Any]:
    """`steps` short steps, each reading the database, as a real chunk does per image."""
    folder = Path(chunk.payload["folder"])
    (folder / f"start-{chunk.index}-{chunk.attempts}-{os.getpid()}").touch()
    for step in range(int(chunk.payload.get("steps", 10))):
        Chunk.objects.filter(pk=chunk.pk).exists()
        (folder / f"step-{chunk.index}").write_text(str(step))
        time.sleep(float(chunk.payload.get("step_seconds", 0.1)))
    with open(folder / "completed.log", "a") as fh:
        fh.write(f"{chunk.index}\n")
    return {"pid": os.getpid()}


def _on_done(job: Job) -> None:
    with open(Path(job.payload["folder"]) / "done.log", "a") as fh:
        fh.write(f"{job.pk}\n")


register_job_kind("test.steps", run_chunk=_steps_with_queries, on_done=_on_done)
