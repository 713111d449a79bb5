"""Run a job's chunks (a run's, or every pending one of a kind) in the test's own process, as
a worker would: claim, run the kind's chunk handler, complete, with the on-commit callbacks (the
done hook) executed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from evalsite.core import jobs
from evalsite.core.models import Chunk
from evalsite.evals.models import EvalRun


def run_chunks_inline(chunks: Iterable[Chunk], capture: Any, *, worker: str = "inline") -> int:
    """Claim, run and complete each of `chunks` in order; `capture` is pytest-django's
    `django_capture_on_commit_callbacks`. Returns how many ran."""
    done = 0
    for chunk in chunks:
        claimed = jobs.chunk_claim(chunk_id=chunk.pk, worker=worker)
        assert claimed is not None
        result = jobs.job_kind(claimed.job.kind).run_chunk(claimed)
        with capture(execute=True):
            jobs.chunk_complete(claimed, result)
        done += 1
    return done


def run_pending_inline(kind: str, capture: Any) -> int:
    """Every pending chunk of every job of `kind`, oldest first; returns how many ran."""
    pending = Chunk.objects.filter(job__kind=kind, status="pending").order_by("pk")
    return run_chunks_inline(pending, capture)


def run_job_inline(
    run: EvalRun, capture: Any, *, only: int | None = None, reverse: bool = False,
    worker: str = "inline",
) -> EvalRun:  # fmt: skip
    """Execute a run's pending chunks here (the first `only` of them) and return it reloaded.
    `reverse` runs them last first, each with its items in reverse order (a run's results must
    not depend on the order its work was done in)."""
    order = "-index" if reverse else "index"
    chunks = list(Chunk.objects.filter(job_id=run.job_id, status="pending").order_by(order))
    chunks = chunks[: only or None]
    if reverse:
        for chunk in chunks:
            payload = {**chunk.payload, "item_ids": chunk.payload["item_ids"][::-1]}
            Chunk.objects.filter(pk=chunk.pk).update(payload=payload)
    run_chunks_inline(chunks, capture, worker=worker)
    return EvalRun.objects.get(pk=run.pk)
