"""The campaign report's anytime-valid section: each pair's decision, and the state routing reads.

Which votes: a pair's non-gold *control* votes, in arrival order (rating id), with the annotators
the report excludes left out. Control items are a uniform sample drawn at creation, so each vote
is a draw with the pair's population preference as its mean, whatever order or routing served
it: the condition under which the betting confidence sequence (`pipelines.stats.sequential`)
holds however often anyone looks. Disagreement-first items are chosen where the outputs differ
most; their votes stay in the descriptive sections and do not move a decision.

Orientation: the baseline of a pair is the campaign's reference run when it is in the pair, else
the pair's first run; the other run is the candidate (vote 1 = candidate better, 0 = baseline
better, tie and both bad = 1/2). All pairs of a campaign are monitored together at the campaign's
alpha, Bonferroni over the pairs (`monitor_pairs`), so every decision shown holds at once with
probability 1 - alpha.

Votes saved: a pair's fixed plan is its non-gold tasks times k; once it is decided, the plan less
the votes it received is what stopping saved. The campaign's plan is its vote budget when it runs
until decided with one, else the sum of the pairs' plans.

The stored decisions are copied into `PairState` rows in the transaction that stores the payload
(`store_pair_states`), which task assignment reads; see `ratings.models.PairState` for why a
decision trailing the newest votes by one recompute is safe.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
from django.db.models import Count, QuerySet

from pipelines.stats import routing
from pipelines.stats.sequential import describe, monitor_pairs
from ratings.models import Campaign, PairState, Rating, Stopping, Stratum, Task

#: Stored priority of a pair without votes (routing treats it as infinite: served first).
UNSEEN_PRIORITY = 1e9
#: Vote scores in run identity, before orientation: a better → 1 when a is the candidate.
SCORE_A = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}


def _plans(campaign: Campaign) -> dict[tuple[int, int], int]:
    rows = (
        Task.objects.filter(campaign=campaign)
        .exclude(stratum=Stratum.GOLD)
        .values_list("run_a_id", "run_b_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(a, b): n * campaign.overlap for a, b, n in rows}


def _used(ratings: QuerySet[Rating]) -> dict[tuple[int, int], int]:
    rows = (
        ratings.exclude(task__stratum=Stratum.GOLD)
        .values_list("task__run_a_id", "task__run_b_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(a, b): n for a, b, n in rows}


def _streams(
    kept: QuerySet[Rating],
    pairs: list[tuple[int, int]],
    candidate_is_a: dict[tuple[int, int], bool],
) -> dict[tuple[int, int], np.ndarray]:
    """Each pair's control votes as candidate scores, in arrival order (one narrow read)."""
    rows = (
        kept.filter(task__stratum=Stratum.CONTROL)
        .exclude(outcome="")
        .order_by("pk")
        .values_list("task__run_a_id", "task__run_b_id", "outcome")
    )
    out: dict[tuple[int, int], list[float]] = {p: [] for p in pairs}
    for a, b, outcome in rows.iterator(chunk_size=10_000):
        if (a, b) in out and outcome in SCORE_A:
            s = SCORE_A[outcome]
            out[(a, b)].append(s if candidate_is_a[(a, b)] else 1.0 - s)
    return {p: np.asarray(v, dtype=np.float64) for p, v in out.items()}


def sequential_section(
    *,
    campaign: Campaign,
    ratings: QuerySet[Rating],
    kept: QuerySet[Rating],
    names: list[str],
    ids: list[int],
    reference_id: int,
) -> dict[str, Any]:
    """The payload's `sequential` section (shape in `ratings.services.reports`)."""
    label = dict(zip(ids, names, strict=True))
    pairs = [(a, b) for a, b in combinations(sorted(ids), 2)]
    candidate_is_a = {(a, b): a != reference_id and b == reference_id for a, b in pairs}
    streams = _streams(kept, pairs, candidate_is_a)
    results = monitor_pairs(streams, campaign.alpha, campaign.margin)
    assert isinstance(results, dict)
    plans, used = _plans(campaign), _used(ratings)
    rows = []
    for a, b in pairs:
        r = results[(a, b)]
        cand, base = (a, b) if candidate_is_a[(a, b)] else (b, a)
        plan, spent = plans.get((a, b), 0), used.get((a, b), 0)
        winner = {"candidate": cand, "baseline": base}.get(r.decision or "")
        rows.append(
            {
                "a": label[a], "a_id": a, "b": label[b], "b_id": b,
                "candidate": label[cand], "candidate_id": cand,
                "baseline": label[base], "baseline_id": base,
                **r.as_dict(),
                "winner": label[winner] if winner else None, "winner_id": winner,
                "text": describe(r, candidate=label[cand], baseline=label[base],
                                  family_alpha=campaign.alpha, pairs=len(pairs)),
                "plan": plan, "used": spent,
                "saved": max(plan - spent, 0) if r.decision else None,
                "priority": 0.0 if r.decision else _priority(streams[(a, b)]),
            }
        )  # fmt: skip
    decided = sum(1 for row in rows if row["decision"])
    total_used = sum(row["used"] for row in rows)
    budget = campaign.vote_budget if campaign.stopping == Stopping.UNTIL_DECIDED else None
    plan_total = budget if budget is not None else sum(row["plan"] for row in rows)
    return {
        "alpha": campaign.alpha,
        "pair_alpha": campaign.alpha / max(len(pairs), 1),
        "margin": campaign.margin,
        "correction": "bonferroni",
        "stratum": Stratum.CONTROL.value,
        "stopping": campaign.stopping,
        "vote_budget": budget,
        "pairs": rows,
        "decided": decided,
        "open": len(rows) - decided,
        "votes_used": total_used,
        "plan": plan_total,
        "saved": max(plan_total - total_used, 0) if rows and decided == len(rows) else None,
        "saved_so_far": sum(row["saved"] or 0 for row in rows),
    }


def _priority(x: np.ndarray) -> float:
    """Routing priority of an open pair: the expected shrink of its sequence's width from one
    more control vote (`pipelines.stats.routing`; infinite before its first vote, stored as a
    large number because JSON has no infinity)."""
    p = routing.priorities([len(x)], [x.sum()], [(x * x).sum()], [False])[0]
    return float(min(p, UNSEEN_PRIORITY))


def store_pair_states(*, campaign: Campaign, section: dict[str, Any] | None) -> None:
    """Copy the section's decisions and priorities into `PairState` (call inside the snapshot's
    storing transaction)."""
    for row in (section or {}).get("pairs") or []:
        PairState.objects.update_or_create(
            campaign=campaign,
            run_a_id=row["a_id"],
            run_b_id=row["b_id"],
            defaults={
                "decision": row["decision"] or "",
                "votes": row["votes"],
                "stopped_at": row["stopped_at"],
                "priority": row["priority"],
            },
        )
