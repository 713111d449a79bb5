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
import re
import time
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.utils import timezone

from evalsite.datasets.models import AttributeRevision
from evalsite.evals.latency import total_latency
from evalsite.evals.models import EvalRun, RunStatus
from evalsite.evals.selectors import primary_run_ids
from evalsite.fairness.selectors import fairness_summaries
from evalsite.releases.models import LeaderboardRow, LeaderboardState
from evalsite.releases.services.leaderboard_uncertainty import (
    METRICS,
    leaderboard_uncertainty,
    per_image_values,
    summary_values,
)
from models.models import PRODUCTION, AliasMove
from pipelines.fairness import display_group
from pipelines.metrics.registry import leaderboard_metrics, names
from pipelines.release.crowd import not_enough

log = logging.getLogger(__name__)

RUN_LABEL = re.compile(r"run #(\d+)$")
ROW_FIELDS = (
    "run", "family", "version", "version_created_at", "runtime", "device", "source", "aliases",
    *names(METRICS), "intervals", "rank", "rank_low", "rank_high", "rank_items", "latency_p50",
    "latency_p99", "latency_n", "latency_tail", "gated_no_subject", "gated_subject", "worst_group",
    "worst_group_iou", "fairness_gap", "crowd", "finished_at",
)  # fmt: skip


def _fairness_fingerprint() -> str:
    from evalsite.fairness.models import FairnessReport

    agg = FairnessReport.objects.aggregate(n=Count("pk"), last=Max("created_at"))
    return f"{agg['n']}:{agg['last'].isoformat() if agg['last'] else '-'}"


def _fairness(summary: dict[str, Any]) -> tuple[str, float | None, float | None]:
    """Worst group (words), its IoU and the largest harmful IoU gap, from the stored fairness
    report's leaderboard summary (evalsite.fairness)."""
    iou = (summary or {}).get("iou") or {}
    worst, largest = iou.get("worst_group") or {}, iou.get("largest_gap") or {}
    name = display_group(worst["attribute"], worst["group"]) if worst else ""
    return name, worst.get("mean"), largest.get("gap")


def leaderboard_fingerprint() -> str:
    from ratings.models import CampaignSnapshot

    runs = EvalRun.objects.filter(status=RunStatus.DONE).aggregate(
        n=Count("pk"), last=Max("finished_at"), top=Max("pk")
    )
    snaps = CampaignSnapshot.objects.aggregate(n=Count("pk"), last=Max("computed_at"))
    revs = AttributeRevision.objects.aggregate(n=Count("pk"), last=Max("pk"))
    moves = AliasMove.objects.aggregate(n=Count("pk"), last=Max("pk"))
    last = runs["last"].isoformat() if runs["last"] else "-"
    snap = snaps["last"].isoformat() if snaps["last"] else "-"
    return (
        f"r{runs['n']}:{runs['top']}:{last}|c{snaps['n']}:{snap}|a{revs['n']}:{revs['last']}"
        f"|m{moves['n']}:{moves['last']}|f{_fairness_fingerprint()}"
    )[:200]


def _rate(n: int, of: int) -> float | None:
    return n / of if of else None


def _interval(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    if not entry or entry.get("estimate") is None:
        return None
    return {"estimate": entry["estimate"], "low": entry.get("low"), "high": entry.get("high")}


def _ids(payload: dict[str, Any]) -> dict[str, int]:
    """Run label -> run id (payload `run_ids`, else the "· run #id" suffix of the label)."""
    names = [str(n) for n in payload.get("runs") or []]
    ids = payload.get("run_ids") or []
    if len(ids) == len(names):
        return {n: int(i) for n, i in zip(names, ids, strict=True)}
    out = {}
    for name in names:
        match = RUN_LABEL.search(name)
        if match:
            out[name] = int(match.group(1))
    return out


def crowd_by_run(run_ids: set[int], production_run: dict[int, int]) -> dict[int, dict[str, Any]]:
    """Strength ± CI (newest campaign snapshot holding the run, anchored at its reference) and
    win rate vs the production run of the same set, as the snapshot stores them: numbers resting
    on too few votes are withheld there (`enough` false) and shown as "not enough votes"."""
    from ratings.models import Campaign, CampaignSnapshot

    out: dict[int, dict[str, Any]] = {}
    members: set[int] = set(
        Campaign.runs.through.objects.filter(evalrun_id__in=run_ids).values_list(
            "campaign_id", flat=True
        )
    )
    snaps = (
        CampaignSnapshot.objects.filter(campaign_id__in=members, computed_at__isnull=False)
        .order_by("-computed_at", "-pk")
        .only("campaign_id", "payload")
    )
    for snap in snaps:
        payload = snap.payload or {}
        scores = (payload.get("scores") or {}).get("all") or {}
        ids = _ids(payload)
        for entry in scores.get("strengths") or []:
            run_id = entry.get("run_id", ids.get(entry.get("run")))
            if run_id is None or run_id in out or run_id not in run_ids:
                continue
            row: dict[str, Any] = {
                "campaign": snap.campaign_id,
                "votes": entry.get("votes"),
                "strength": _interval(entry),
                "win_rate": None,
                "note": "",
                "simulated": int((payload.get("simulated") or {}).get("ratings") or 0),
            }
            if entry.get("enough") is False:
                row["note"] = not_enough(int(entry.get("votes") or 0), int(entry["needed"]))
            prod = production_run.get(run_id)
            for p in scores.get("pairs") or []:
                a = p.get("a_id", ids.get(p.get("a")))
                b = p.get("b_id", ids.get(p.get("b")))
                if prod is None or {a, b} != {run_id, prod}:
                    continue
                row["win_rate"] = _interval(p.get("win") if a == run_id else p.get("loss"))
                if p.get("enough") is False:
                    row["note"] = not_enough(int(p.get("votes") or 0), int(p["needed"]))
            out[run_id] = row
    return out


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
    crowd = crowd_by_run(set(ids), production_run)
    per_image = per_image_values([r.pk for r in runs])
    fairness = fairness_summaries(runs=runs)
    rows = []
    for r in runs:
        summary = r.summary or {}
        metrics = summary.get("metrics") or {}
        gating = summary.get("gating") or {}
        lat = (total_latency(summary) if r.has_latency else None) or {}
        worst_group, worst_iou, gap = _fairness((fairness.get(r.pk) or {}).get("summary") or {})
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
            gated_no_subject=_rate(gating.get("no_subject_gated", 0),
                                   gating.get("no_subject_items", 0)),
            gated_subject=_rate(gating.get("subject_gated", 0), gating.get("subject_items", 0)),
            worst_group=worst_group[:64], worst_group_iou=worst_iou, fairness_gap=gap,
            crowd=crowd.get(r.pk) or {}, finished_at=r.finished_at,
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
        if not section:
            continue
        pick = next((r for r in section["table"] if r["metric"] in sortable), None)
        if pick is None:
            continue
        best = section["table"][0]
        out[family] = {
            "metric": pick["metric"], "label": pick["label"], "share": pick["share"],
            "low": pick["low"], "high": pick["high"], "n": pick["n"],
            "best": best["metric"], "best_label": best["label"],
            "campaigns": section["campaigns"], "sentence": section["sentence"],
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
