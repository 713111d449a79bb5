"""The stored leaderboard: rows recomputed when their inputs change, never per request.

Inputs and how a change is noticed (`leaderboard_fingerprint`): finished runs (count, newest
finish), campaign snapshots (newest computation), attribute revisions (newest id), alias moves
(badges) and stored fairness reports (their leaderboard summary: worst group, largest gap).
`leaderboard_refresh` compares the fingerprint with the one the rows were built from and rebuilds
everything in one transaction when it differs; the beat task `releases.refresh_leaderboard` calls
it every LEADERBOARD_REFRESH_SECONDS, and a release decision that moves production calls it after
commit (the badges change at once). A rebuild reads the runs' stored summaries and, for the
intervals, their per-image values of the leaderboard metrics (one query): each cell gets a
bootstrap interval over the run's images and each version a rank interval among the versions of
its set version (`leaderboard_uncertainty`, 1000 rounds), so pages only read stored numbers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.utils import timezone

from evalsite.datasets.models import AttributeRevision
from evalsite.evals.models import EvalRun, RunStatus
from evalsite.evals.selectors import primary_run_ids
from evalsite.evals.summary import run_summary
from evalsite.fairness.selectors import fairness_fingerprint, fairness_summaries
from evalsite.releases.models import LeaderboardRow, LeaderboardState
from evalsite.releases.services.leaderboard_uncertainty import (
    METRICS,
    leaderboard_uncertainty,
    per_image_values,
    summary_values,
)
from models.models import PRODUCTION, AliasMove
from pipelines.metrics.registry import leaderboard_metrics, names
from pipelines.payloads.fairness import RunFairness
from ratings.services.reports import crowd_numbers

log = logging.getLogger(__name__)

ROW_FIELDS = (
    "run", "family", "version", "version_created_at", "runtime", "device", "source", "aliases",
    *names(METRICS), "intervals", "rank", "rank_low", "rank_high", "rank_items", "latency_p50",
    "latency_p99", "latency_n", "latency_tail", "gated_no_subject", "gated_subject", "worst_group",
    "worst_group_iou", "fairness_gap", "crowd", "finished_at",
)  # fmt: skip


def _fairness(fairness: RunFairness | None) -> tuple[str, float | None, float | None]:
    """Worst group (words), its IoU and the largest harmful IoU gap, from the stored fairness
    report's summary (evalsite.fairness)."""
    iou = fairness.summary.metric("iou") if fairness is not None else None
    if iou is None:
        return "", None, None
    worst, largest = iou.worst_group, iou.largest_gap
    return (
        worst.name if worst else "",
        worst.mean if worst else None,
        largest.gap if largest else None,
    )


def leaderboard_fingerprint() -> str:
    from ratings.selectors import snapshots_fingerprint

    runs = EvalRun.objects.filter(status=RunStatus.DONE).aggregate(
        n=Count("pk"), last=Max("finished_at"), top=Max("pk")
    )
    revs = AttributeRevision.objects.aggregate(n=Count("pk"), last=Max("pk"))
    moves = AliasMove.objects.aggregate(n=Count("pk"), last=Max("pk"))
    last = runs["last"].isoformat() if runs["last"] else "-"
    return (
        f"r{runs['n']}:{runs['top']}:{last}|c{snapshots_fingerprint()}|a{revs['n']}:{revs['last']}"
        f"|m{moves['n']}:{moves['last']}|f{fairness_fingerprint()}"
    )[:200]


def _rows() -> list[LeaderboardRow]:
    ids = set(primary_run_ids().values())
    runs = list(
        EvalRun.objects.filter(pk__in=ids)
        .select_related("model_version__family", "dataset_version")
        .prefetch_related("model_version__aliases")
    )
    by_key = {(r.model_version_id, r.dataset_version_id): r.pk for r in runs}
    production_run: dict[int, int] = {}
    for r in runs:
        prod = next((a for a in r.model_version.family.aliases.all() if a.name == PRODUCTION), None)
        if prod is not None and prod.version_id != r.model_version_id:
            target = by_key.get((prod.version_id, r.dataset_version_id))
            if target is not None:
                production_run[r.pk] = target
    crowd = crowd_numbers(run_ids=set(ids), production_run=production_run)
    per_image = per_image_values([r.pk for r in runs])
    fairness = fairness_summaries(runs=runs)
    rows = []
    for r in runs:
        summary = run_summary(r)
        metrics = summary.metrics if summary is not None else {}
        gating = summary.gating if summary is not None else None
        total = summary.latency.total() if summary is not None and r.has_latency else None
        lat = total.to_dict() if total is not None else {}
        worst_group, worst_iou, gap = _fairness(fairness.get(r.pk))
        mv = r.model_version
        rows.append(LeaderboardRow(
            dataset_version_id=r.dataset_version_id, model_version_id=mv.pk, run=r,
            family=mv.family.name, version=mv.version, version_created_at=mv.created_at,
            runtime=r.runtime_label or r.runtime, device=r.device or lat.get("device") or "",
            source=r.source,
            aliases=sorted(a.name for a in mv.aliases.all()),
            **summary_values(metrics),
            latency_p50=lat.get("p50"), latency_p99=lat.get("tail_ms"),
            latency_n=lat.get("n"), latency_tail=lat.get("tail") or "",
            gated_no_subject=gating.no_subject_rate if gating is not None else None,
            gated_subject=gating.subject_rate if gating is not None else None,
            worst_group=worst_group[:64], worst_group_iou=worst_iou, fairness_gap=gap,
            crowd=crowd[r.pk].to_dict() if r.pk in crowd else {}, finished_at=r.finished_at,
        ))  # fmt: skip
    # Cells become per-image means with intervals, versions get rank intervals (for a run the
    # means equal its summary's; runs without per-image rows keep their summary numbers).
    leaderboard_uncertainty(rows, per_image)
    return rows


def people_metrics_by_family(families: set[str]) -> dict[str, dict[str, Any]]:
    """Per family, the leaderboard metric that best predicts people: the highest-ranked
    leaderboard column in the family's pooled whole-image agreement table (the table's overall
    best may be a metric the leaderboard has no column for; both are kept, so the page can say
    so). Families without a decided rated item are left out."""
    from ratings.services.metric_agreement import family_metric_agreement

    sortable = {m.name for m in leaderboard_metrics()}
    out: dict[str, dict[str, Any]] = {}
    for family in sorted(families):
        section = family_metric_agreement(family=family)["image"]
        if section is None:
            continue
        pick = next((r for r in section.table if r.metric in sortable), None)
        if pick is None:
            continue
        best = section.table[0]
        out[family] = {
            "metric": pick.metric, "label": pick.label, "share": pick.share,
            "low": pick.low, "high": pick.high, "n": pick.n,
            "best": best.metric, "best_label": best.label,
            "campaigns": list(section.campaigns), "sentence": section.sentence,
        }  # fmt: skip
    return out


def leaderboard_refresh(*, force: bool = False) -> bool:
    """Rebuild the stored rows when an input changed (or `force`); True when rebuilt."""
    started = time.perf_counter()
    fingerprint = leaderboard_fingerprint()
    try:
        state, _ = LeaderboardState.objects.get_or_create(key="default")
    except IntegrityError:  # a concurrent first refresh created it
        state = LeaderboardState.objects.get(key="default")
    if not force and state.fingerprint == fingerprint:
        return False
    rows = _rows()
    keep = {(r.dataset_version_id, r.model_version_id) for r in rows}
    with transaction.atomic():
        stale = [
            pk
            for pk, dv, mv in LeaderboardRow.objects.values_list(
                "pk", "dataset_version_id", "model_version_id"
            )
            if (dv, mv) not in keep
        ]
        LeaderboardRow.objects.filter(pk__in=stale).delete()
        LeaderboardRow.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["dataset_version", "model_version"],
            update_fields=list(ROW_FIELDS),
            batch_size=500,
        )
        LeaderboardState.objects.filter(pk=state.pk).update(
            people_metrics=people_metrics_by_family({r.family for r in rows}),
            fingerprint=fingerprint,
            refreshed_at=timezone.now(),
            seconds=time.perf_counter() - started,
        )
    return True
