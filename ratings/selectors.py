"""Read-side of ratings: campaign votes as a `scores.Votes` table and the campaign report.

Why one report dict: the campaign page, its JSON export and the tests read the same structure, so
what a manager sees and what they download cannot drift apart.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from django.db.models import Count, Max, Q
from django.utils import timezone

from evalsite.evals.models import EvalRun
from ratings import scores
from ratings.models import Assignment, Campaign, Mode, Rating, Stratum, Task

OUTCOME_CODE = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}
SHOWN_CODE = {"left": 0, "right": 1, "tie": 2, "both_bad": 3}


def campaign_runs(campaign: Campaign) -> list[EvalRun]:
    return list(
        campaign.runs.select_related("model_version__family").prefetch_related(
            "model_version__aliases"
        ).order_by("pk")
    )  # fmt: skip


def run_label(run: EvalRun) -> str:
    mv = run.model_version
    aliases = sorted(a.name for a in mv.aliases.all())
    tag = f" [{', '.join(aliases)}]" if aliases else ""
    return f"{mv.family.name} {mv.version}{tag} · run #{run.pk}"


def rating_rows(campaign: Campaign) -> list[dict[str, Any]]:
    return list(
        Rating.objects.filter(campaign=campaign)
        .order_by("created_at", "pk")
        .values(
            "pk", "task_id", "task__item_id", "task__item__stem", "task__stratum", "task__run_a_id",
            "task__run_b_id", "task__gold_winner", "task__iou_a", "task__iou_b",
            "assignment__left_is_a", "annotator__username", "shown_choice", "outcome", "score",
            "reasons", "seconds", "late", "created_at",
        )
    )  # fmt: skip


def votes_of(rows: list[dict[str, Any]], run_index: dict[int, int]) -> scores.Votes:
    """Pairwise ratings as a Votes table (absolute-mode rows carry their score as outcome)."""
    if not rows:
        return scores.Votes.empty()

    def gold_shown(r: dict[str, Any]) -> int:
        winner = r["task__gold_winner"]
        if not winner:
            return -1
        left_is_a = r["assignment__left_is_a"]
        return 0 if (winner == "a") == left_is_a else 1

    return scores.Votes(
        items=np.array([r["task__item_id"] for r in rows]),
        tasks=np.array([r["task_id"] for r in rows], np.int64),
        run_a=np.array([run_index[r["task__run_a_id"]] for r in rows], np.int64),
        run_b=np.array([run_index.get(r["task__run_b_id"], 0) for r in rows], np.int64),
        outcome=np.array([OUTCOME_CODE.get(r["outcome"], r["score"] or 0) for r in rows], np.int64),
        shown=np.array([SHOWN_CODE.get(r["shown_choice"], 2) for r in rows], np.int64),
        annotators=np.array([r["annotator__username"] for r in rows]).astype(str),
        seconds=np.array([r["seconds"] for r in rows], np.float64),
        gold=np.array([gold_shown(r) for r in rows], np.int64),
        stratum=np.array([r["task__stratum"] for r in rows]).astype(str),
    )


def _clean(value: Any) -> Any:
    """NaN → None so the JSON export is valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _interval(iv: Any) -> dict[str, float]:
    return {"estimate": iv.estimate, "low": iv.low, "high": iv.high}


def _bt_dict(report: Any, names: list[str]) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "reference": report.reference, "votes": report.votes, "items": report.items,
        "connected": report.fit.connected,
        "strengths": [{"run": n, **_interval(report.strengths[n]),
                       "both_bad": _interval(report.both_bad[n])} for n in names],
        "pairs": [{"a": names[p.a], "b": names[p.b], "votes": p.votes, "items": p.items,
                   "win": _interval(p.win), "tie": _interval(p.tie), "loss": _interval(p.loss),
                   "both_bad": _interval(p.both_bad)} for p in report.pairs],
    }  # fmt: skip


def progress(campaign: Campaign) -> dict[str, Any]:
    tasks = Task.objects.filter(campaign=campaign)
    per_task = tasks.annotate(n=Count("ratings", filter=Q(ratings__late=False))).values_list(
        "n", flat=True
    )
    counts = list(per_task)
    annotators = list(
        Rating.objects.filter(campaign=campaign)
        .values("annotator__username")
        .annotate(n=Count("pk"), late=Count("pk", filter=Q(late=True)), last=Max("created_at"))
        .order_by("-n", "annotator__username")
    )
    return {
        "tasks": len(counts),
        "by_stratum": dict(
            tasks.values_list("stratum").annotate(n=Count("pk")).values_list("stratum", "n")
        ),
        "ratings": Rating.objects.filter(campaign=campaign).count(),
        "late": Rating.objects.filter(campaign=campaign, late=True).count(),
        "needed": len(counts) * campaign.overlap,
        "complete_tasks": sum(1 for n in counts if n >= campaign.overlap),
        "live_leases": Assignment.objects.filter(campaign=campaign, submitted_at__isnull=True)
        .filter(leased_until__gt=timezone.now())
        .count(),
        "annotators": annotators,
    }


def campaign_report(
    campaign: Campaign, *, exclude: bool | None = None, rounds: int = scores.ROUNDS
) -> dict[str, Any]:
    """Everything the campaign page and JSON export show, computed from the stored ratings."""
    exclude = campaign.exclude_flagged if exclude is None else exclude
    runs = campaign_runs(campaign)
    names = [run_label(r) for r in runs]
    index = {r.pk: i for i, r in enumerate(runs)}
    ref = index.get(campaign.reference_run_id or -1, 0)
    rows = rating_rows(campaign)
    votes = votes_of(rows, index)
    report: dict[str, Any] = {
        "campaign": {"id": campaign.pk, "name": campaign.name, "mode": campaign.mode,
                     "status": campaign.status, "overlap": campaign.overlap,
                     "set": campaign.dataset_version.spec, "exclude_flagged": exclude},
        "runs": names, "reference": names[ref], "progress": progress(campaign),
        "reasons": scores.reason_counts([r["reasons"] for r in rows]),
    }  # fmt: skip
    gold_tasks = Task.objects.filter(campaign=campaign, stratum=Stratum.GOLD).count()
    qc_rows = scores.qc(votes, threshold=campaign.gold_threshold, min_gold=campaign.min_gold)
    flagged = scores.excluded_annotators(qc_rows)
    excluded = flagged if exclude else set()
    report["qc"] = {
        "gold_tasks": gold_tasks, "threshold": campaign.gold_threshold,
        "min_gold": campaign.min_gold, "insufficient_gold": gold_tasks < campaign.min_gold,
        "flagged": sorted(flagged), "excluded": sorted(excluded),
        "annotators": [r.as_dict() for r in qc_rows],
    }  # fmt: skip
    if campaign.mode == Mode.PAIRWISE:
        ds = scores.dawid_skene_accuracy(votes)
        for row in report["qc"]["annotators"]:
            row["dawid_skene"] = ds.get(row["annotator"])
    kept = scores.scored(votes, excluded)
    report["excluded_ratings"] = len(votes.select(votes.stratum != scores.GOLD)) - len(kept)
    if campaign.mode == Mode.ABSOLUTE:
        report["agreement"] = scores.agreement(kept, level="ordinal").as_dict()
        report["absolute"] = _absolute_scores(kept, names, rounds=rounds, seed=campaign.seed)
    else:
        report["agreement"] = scores.agreement(kept).as_dict()
        report["scores"] = {
            stratum: _bt_dict(
                scores.bt(kept.select(kept.stratum == stratum) if stratum != "all" else kept,
                          names, reference=ref, rounds=rounds, seed=campaign.seed), names)
            for stratum in (Stratum.CONTROL, Stratum.DISAGREEMENT, "all")
        }  # fmt: skip
        other = scores.scored(votes, set() if exclude else flagged)
        report["scores_other_setting"] = _bt_dict(
            scores.bt(other, names, reference=ref, rounds=rounds, seed=campaign.seed), names
        )
        by_task = {r["task_id"]: r for r in rows}
        iou = {t: (r["task__iou_a"], r["task__iou_b"]) for t, r in by_task.items()}
        report["human_disagreement"] = [
            {**row, "item": by_task[row["task"]]["task__item__stem"],
             "a": names[index[by_task[row["task"]]["task__run_a_id"]]],
             "b": names[index[by_task[row["task"]]["task__run_b_id"]]]}
            for row in scores.human_disagreement(kept)
        ]  # fmt: skip
        report["metric_divergence"] = [
            {**row, "item": by_task[row["task"]]["task__item__stem"],
             "a": names[index[by_task[row["task"]]["task__run_a_id"]]],
             "b": names[index[by_task[row["task"]]["task__run_b_id"]]]}
            for row in scores.metric_divergence(kept, iou)
        ]  # fmt: skip
    return _clean(report)


def _absolute_scores(
    votes: scores.Votes, names: list[str], *, rounds: int, seed: int
) -> list[dict[str, Any]]:
    from pipelines.stats import bootstrap_mean

    out = []
    for i, name in enumerate(names):
        vals = votes.outcome[votes.run_a == i].astype(float)
        if not len(vals):
            out.append({"run": name, "n": 0, "estimate": None, "low": None, "high": None})
            continue
        iv = bootstrap_mean(vals, rounds=rounds, seed=seed)
        out.append({"run": name, "n": len(vals), **_interval(iv)})
    return out
