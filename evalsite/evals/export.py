"""One JSON/CSV shape of a run for every door: page download, REST API and `run_eval --json`.

Why one module: a model team's CI parses the API's JSON and a person opens the CSV; if each door
built its own rows they would drift. Metric keys are metrics.md's names.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from evalsite.evals.latency import total_latency
from evalsite.evals.models import (
    SORTABLE_METRICS,
    EvalRun,
    ItemResult,
    RunSource,
)
from evalsite.evals.selectors import roles_by_stem, run_biased_evidence, run_progress
from pipelines import csvsafe
from pipelines.release.evidence import RoleOverlap
from pipelines.stats.latency import LATENCY_STAGES

CSV_COLUMNS = (
    "stem", "status", "error", *SORTABLE_METRICS, "confidence", "gated", "instance_count",
    *(f"latency_{s}_ms" for s in LATENCY_STAGES), "in_training_data", "alpha_sha256",
)  # fmt: skip


def run_status_document(run: EvalRun, overlaps: list[RoleOverlap] | None = None) -> dict[str, Any]:
    """What a poller needs: identity, config, status and progress counts, and the set items the
    version declares it was trained, tuned or selected on (``overlaps``: already read, or None)."""
    if overlaps is None:
        overlaps = run_biased_evidence(run)
    return {
        "id": run.pk,
        "model": run.model_version.ref,
        "dataset": run.dataset_version.spec,
        "runtime": run.runtime,
        "device": run.device,
        "source": run.source,
        "imported": run_import_document(run),
        "has_latency": run.has_latency,
        "queue": run.queue,
        "postprocess": run.postprocess,
        "config_hash": run.config_hash,
        "status": run.status,
        "error": run.error,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "progress": run_progress(run),
        "output_digest": run.output_digest or None,
        "reproduce_of": run.reproduce_of_id,
        "reproduction": run.reproduction or None,
        "biased_evidence": [o.as_dict() for o in overlaps],
    }


def run_import_document(run: EvalRun) -> dict[str, Any] | None:
    """What the importer stated about an imported run's predictions (None for worker runs)."""
    if run.source != RunSource.IMPORTED:
        return None
    return {
        "device": run.device,
        "os": run.os,
        "runtime_label": run.runtime_label,
        "compute_units": run.compute_units,
        "provenance": run.provenance,
        "import_name": run.import_name,
        "imported_by": run.created_by.get_username() if run.created_by else None,
        **{k: v for k, v in (run.environment.get("import") or {}).items() if k != "notes"},
        "notes": (run.environment.get("import") or {}).get("notes", []),
    }


def result_row(r: ItemResult, roles: dict[str, list[str]]) -> dict[str, Any]:
    """One item's row; ``roles``: stem -> declared roles of its picture (`roles_by_stem`)."""
    row: dict[str, Any] = {"stem": r.item.stem, "status": r.status, "error": r.error}
    row.update({k: getattr(r, k) for k in SORTABLE_METRICS})
    row.update(
        {
            "confidence": r.confidence,
            "gated": r.gated,
            "instance_count": r.instance_count,
            "in_training_data": "trained" in roles.get(r.item.stem, ()),
            "declared_roles": roles.get(r.item.stem, []),
            "alpha_sha256": r.alpha_sha256,
        }
    )
    for stage in LATENCY_STAGES:
        row[f"latency_{stage}_ms"] = r.latency.get(stage)
    return row


def result_rows(run: EvalRun) -> Iterable[dict[str, Any]]:
    roles = roles_by_stem(run_biased_evidence(run))
    qs = ItemResult.objects.filter(run=run).select_related("item").order_by("item__stem")
    for r in qs.iterator(chunk_size=500):
        yield result_row(r, roles)


def run_results_document(run: EvalRun) -> dict[str, Any]:
    """Status + summary + curves + every per-image row (metrics, ungated metrics)."""
    overlaps = run_biased_evidence(run)
    roles = roles_by_stem(overlaps)
    per_image = []
    for r in ItemResult.objects.filter(run=run).select_related("item").order_by("item__stem"):
        row = result_row(r, roles)
        row["metrics"] = r.metrics
        row["ungated_metrics"] = r.ungated
        row["instance_scores"] = r.instance_scores
        per_image.append(row)
    return {
        **run_status_document(run, overlaps),
        "environment": run.environment,
        "summary": run.summary,
        # whole-pipeline latency with n and its tail statistic (p99 from 100 images, else max)
        "latency": total_latency(run.summary) if run.has_latency else None,
        "curves": run.curves,
        "per_image": per_image,
    }


def results_csv(run: EvalRun) -> str:
    buf = io.StringIO()
    writer = csvsafe.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in result_rows(run):
        writer.writerow(row)
    return buf.getvalue()
