"""Finishing a run: aggregate what its chunks stored and publish the summary.

The summary is the same `MetricAggregator` `python -m pipelines.metrics` runs on a folder, fed
the run's stored per-image evaluations: each row's scalars (`ItemResult.metrics` / `ungated`,
computed by the chunk on exactly the arrays the 8-bit PNGs hold) and each item's threshold
curves, which per-image scalars cannot give (the set's mean PR / F / E curves), kept by the
chunk (`scores.curves_save`). So the page equals the command on the `alpha/` and
`alpha_ungated/` folders without finalising decoding them again: that re-read was a per-run cost
paid after the last image. An item whose curves are missing or come from another attempt than
its row is evaluated from its stored PNGs instead (same function, same arrays), as is every item
of a run scored before the curves were kept.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from evalsite.core.models import Chunk
from evalsite.datasets.storage import item_file
from evalsite.evals.models import (
    EvalRun,
    ItemResult,
    ResultStatus,
    RunStatus,
)
from evalsite.evals.services.artefacts import alpha_sha256, run_file
from evalsite.evals.services.comparisons import run_comparison_after_run_done
from evalsite.evals.services.parity import parity_refresh
from evalsite.evals.services.reproduce import reproduction_refresh
from evalsite.evals.services.runs import eval_run_fail
from evalsite.evals.services.scores import ItemCurves, curves_dict, curves_load
from evalsite.evals.signals import run_finished
from pipelines.hashing import sha256_bytes
from pipelines.metrics import SCALAR_KEYS, MetricAggregator, evaluate_pair
from pipelines.metrics.instances import summarise as summarise_instances
from pipelines.metrics.io import Pair, load_pair, read_gray8
from pipelines.metrics.registry import image_means
from pipelines.metrics.summaries import ScoredItem, gating_summary, image_size_note, slices
from pipelines.payloads.run_summary import RUN_SUMMARY_VERSION, Counts, Gating, Latency, RunSummary
from pipelines.stats.latency import latency_summary

log = logging.getLogger(__name__)


def _score(results: Iterable[ItemResult]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`MetricAggregator` outputs over the run's gated and ungated outputs: (gated, ungated).

    Items are added in the order given, so the sums are the ones `python -m pipelines.metrics`
    makes on the `alpha/` and `alpha_ungated/` folders (sorted by name). `results` must come
    with their items (`select_related("item")`).
    """
    aggs = {"alpha": MetricAggregator(), "alpha_ungated": MetricAggregator()}
    items = list(results)
    kept = curves_load(run_id=items[0].run_id) if items else {}
    for r in items:
        gated, ungated = _stored(r, kept.get(r.item_id)) or _evaluations(r)
        aggs["alpha"].add(r.item.stem, gated)
        aggs["alpha_ungated"].add(r.item.stem, ungated)
    return aggs["alpha"].compute(), aggs["alpha_ungated"].compute()


def _stored(
    r: ItemResult, curves: ItemCurves | None
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """An item's (gated, ungated) evaluation from its row and kept curves, when both come from
    the same attempt and the row has every metric (else None: evaluate the files)."""
    if curves is None or curves.attempt != r.attempt:
        return None
    if not all(k in r.metrics and k in r.ungated for k in SCALAR_KEYS):
        return None  # scored before a metric was added
    return (
        {**r.metrics, "curves": curves_dict(curves.gated)},
        {**r.ungated, "curves": curves_dict(curves.ungated)},
    )


def _evaluations(r: ItemResult) -> tuple[dict[str, Any], dict[str, Any]]:
    """An item's (gated, ungated) evaluation computed from its stored files.

    The mask is decoded once for both, and an ungated file with the same bytes as the gated one
    (the item was not gated) is the same prediction, so its evaluation is the gated one.
    """
    stem, gated_path = r.item.stem, run_file(r.artefacts["alpha"])
    ungated_path = run_file(r.artefacts["alpha_ungated"])
    mask_path = item_file(r.item.mask)
    pred_u8, gt, _ = load_pair(Pair(stem, gated_path, mask_path))
    gated = evaluate_pair(pred_u8, gt)
    if _same_bytes(gated_path, ungated_path):
        return gated, gated
    pred_u8 = read_gray8(ungated_path)
    if pred_u8.shape != gt.shape:  # what load_pair says about a mismatched pair
        load_pair(Pair(stem, ungated_path, mask_path))
    return gated, evaluate_pair(pred_u8, gt)


def _same_bytes(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
    except OSError:
        return False  # the reader that follows says what is wrong with the file


def _scored(r: ItemResult) -> ScoredItem:
    """What the summary sections need of a result (its item must be loaded with it)."""
    item = r.item
    return ScoredItem(stem=item.stem, gated=r.gated, no_subject=item.is_no_subject,
                      size_bucket=item.size_bucket, tags=tuple(item.tags), width=item.width,
                      height=item.height)  # fmt: skip


def instances_summary(results: list[ItemResult]) -> dict[str, Any] | None:
    """Per-image means over the items with instance masks, and the pooled figures named as such
    (`pipelines.metrics.instances.summarise`)."""
    return summarise_instances(r.instance_scores for r in results)


def _chunk_results(run: EvalRun) -> list[dict[str, Any]]:
    if not run.job_id:
        return []
    return [c.result or {} for c in Chunk.objects.filter(job_id=run.job_id)]


def failure_message(failed: list[ItemResult], total: int) -> str:
    reasons = Counter(r.error for r in failed)
    common, n = reasons.most_common(1)[0] if reasons else ("no result was written", 0)
    return (
        f"the model failed every item ({len(failed)} of {total}); most common reason "
        f"({n}×): {common}"
    )


def build_summary(run: EvalRun) -> tuple[dict[str, Any], dict[str, Any]]:
    results = list(ItemResult.objects.filter(run=run).select_related("item").order_by("item__stem"))
    ok = [r for r in results if r.status == ResultStatus.OK]
    failed = [r for r in results if r.status == ResultStatus.FAILED]
    expected = run.dataset_version.items.count()
    if len(ok) + len(failed) < expected:
        # "done" means every item has the model's answer (an output or a model failure): a
        # summary over the items that happened to finish would be a different, unlabelled set.
        missing = expected - len(ok) - len(failed)
        raise NoResults(
            f"incomplete: {missing} of {expected} items have no result from the model "
            "(their work was lost or never ran); the run is not scored on a subset — run it again"
        )
    if not ok:
        raise NoResults(failure_message(failed, run.dataset_version.item_count or len(results)))
    gated, ungated = _score(ok)
    per_image = {row["name"]: row for row in gated["per_image"]}
    scored = [_scored(r) for r in ok]
    chunks = _chunk_results(run)
    summary = RunSummary(
        version=RUN_SUMMARY_VERSION,
        # The metrics command's summary plus the registry's per-image means it does not carry
        # (mean per-image max F / max E: a different number from the set curve's max F / max E).
        metrics={**gated["summary"], **image_means(gated["per_image"])},
        ungated_metrics={**ungated["summary"], **image_means(ungated["per_image"])},
        counts=Counts(
            items=run.dataset_version.item_count,
            ok=len(ok),
            failed=len(failed),
            gated=sum(r.gated for r in ok),
        ),
        gating=Gating(**gating_summary(scored)),
        latency=Latency.from_dict(
            latency_summary((r.latency for r in ok), sum(int(c.get("warmups", 0)) for c in chunks))
        ),
        sections={
            "slices": slices(scored, per_image),
            "instances": instances_summary(ok),
            "image_size": image_size_note(scored),
            "failures": dict(Counter(r.error for r in failed).most_common(10)),
            "workers": sorted({(c.get("worker") or {}).get("hostname", "") for c in chunks} - {""}),
            "restarts": sum(int(c.get("restarts", 0)) for c in chunks),
        },
    ).to_dict()
    curves = {**gated["curves"], "ungated": ungated["curves"]}
    return summary, curves


def outputs_digest(item_shas: Mapping[str, str]) -> str:
    """Digest of a run's outputs: sha256 over the sorted "item_key:alpha_sha256" lines.

    The item key is the item's stem (unique within a set version); a failed item contributes
    "stem:failed", so a run that failed an image never matches one that scored it.
    """
    lines = sorted(f"{key}:{sha or 'failed'}" for key, sha in item_shas.items())
    return sha256_bytes("\n".join(lines).encode())


def item_digests(run: EvalRun) -> tuple[dict[int, str], str]:
    """(sha256 of the stored alpha PNG by ItemResult id, for the rows that lack it; the run's
    outputs digest)."""
    rows = ItemResult.objects.filter(run=run).values_list(
        "pk", "item__stem", "status", "artefacts", "alpha_sha256"
    )
    missing: dict[int, str] = {}
    by_stem: dict[str, str] = {}
    for pk, stem, status, files, written in rows:
        # The chunk hashed the bytes it wrote; rows from before that are hashed from the file.
        sha = (written or alpha_sha256(files["alpha"])) if status == ResultStatus.OK else ""
        by_stem[stem] = sha
        if sha != written:
            missing[pk] = sha
    return missing, outputs_digest(by_stem)


class NoResults(Exception):
    """No item produced an output, or some item has no result at all: the run fails with this
    message."""


def _worker_environment(run: EvalRun) -> dict[str, Any]:
    envs = [c.get("worker") for c in _chunk_results(run) if c.get("worker")]
    return {**run.environment, "workers": envs[:8]}


def eval_run_finalise(*, run_id: int) -> EvalRun:
    """Aggregate and mark the run done (or failed when every item failed). Idempotent."""
    run = EvalRun.objects.select_related("dataset_version", "model_version").get(pk=run_id)
    if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        return run
    try:
        summary, curves = build_summary(run)
        item_shas, digest = item_digests(run)
    except NoResults as exc:
        eval_run_fail(run_id=run_id, reason=str(exc))
        run.refresh_from_db()
        return run
    except Exception as exc:
        log.exception("aggregating run %s failed", run_id)
        eval_run_fail(run_id=run_id, reason=f"aggregation failed: {type(exc).__name__}: {exc}")
        run.refresh_from_db()
        return run
    with transaction.atomic():
        ItemResult.objects.bulk_update(
            [ItemResult(pk=pk, alpha_sha256=sha) for pk, sha in item_shas.items()],
            ["alpha_sha256"],
            batch_size=500,
        )
        EvalRun.objects.filter(pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
            status=RunStatus.DONE,
            summary=summary,
            curves=curves,
            output_digest=digest,
            environment=_worker_environment(run),
            finished_at=timezone.now(),
            error="",
        )
    run.refresh_from_db()
    try:
        parity_refresh(run=run)
    except Exception:  # parity is an extra section; it must never undo a finished run
        log.exception("parity of run %s failed", run_id)
    if run.reproduce_of_id:
        try:
            reproduction_refresh(run=run)
        except Exception:  # the comparison is an extra section, like parity
            log.exception("comparing reproduction %s with its original failed", run_id)
    run_finished.send(sender=EvalRun, run=run)  # the fairness report is enqueued; never raises
    run_comparison_after_run_done(run=run)  # paired intervals vs production; never raises
    return run


#: A run whose job finished this long ago but which is still open lost its finishing step (the
#: worker died between the last chunk and the aggregation); it is finished again from the rows.
RECONCILE_AFTER_SECONDS = 60


def eval_run_reconcile(*, run: EvalRun) -> EvalRun:
    """Bring a run in line with its job when the job's hook never ran (idempotent, cheap)."""
    from datetime import timedelta

    from evalsite.core.models import JobStatus
    from evalsite.evals.services.runs import eval_run_mark_cancelled

    if run.is_finished or run.job is None or not run.job.is_finished:
        return run
    stale = run.job.finished_at and timezone.now() - run.job.finished_at > timedelta(
        seconds=RECONCILE_AFTER_SECONDS
    )
    if not stale:
        return run
    if run.job.status == JobStatus.DONE:
        return eval_run_finalise(run_id=run.pk)
    if run.job.status == JobStatus.FAILED:
        eval_run_fail(run_id=run.pk, reason=f"evaluation job failed: {run.job.error}")
    else:
        eval_run_mark_cancelled(run_id=run.pk, reason=run.job.error or "cancelled")
    run.refresh_from_db()
    return run
