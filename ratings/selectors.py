"""Read side of ratings: a campaign's runs and labels, progress counts, rating rows for the CSV
export, and the stored report (`campaign_snapshot_get`).

Pages never compute statistics: `ratings.services.reports` computes the report once into a
`CampaignSnapshot`, and the campaign page, its JSON export, the leaderboard and release reports
read that payload, so what a manager sees and what they download cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Exists, IntegerField, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from evalsite.core.errors import NotFound
from evalsite.evals.models import EvalRun
from ratings.models import SIMULATED_GROUP, Assignment, Campaign, CampaignSnapshot, Rating, Task


class CampaignNotFound(NotFound):
    """No campaign with this id (of the asked mode)."""


def campaign_get(pk: int, *, mode: str | None = None) -> Campaign:
    """The campaign with its set version, or CampaignNotFound; with `mode`, only one of it (an
    attribute-labelling page never shows a rating campaign)."""
    rows = Campaign.objects.select_related("dataset_version__dataset").filter(pk=pk)
    campaign = rows.filter(mode=mode).first() if mode is not None else rows.first()
    if campaign is None:
        raise CampaignNotFound(f"No campaign #{pk}.")
    return campaign


def simulated_usernames(*, usernames: Iterable[str]) -> set[str]:
    """Which of these annotators are simulated raters (members of the `simulated` group)."""
    return set(
        User.objects.filter(username__in=list(usernames), groups__name=SIMULATED_GROUP)
        .values_list("username", flat=True)
    )  # fmt: skip


def _simulated_annotator() -> Exists:
    return Exists(
        User.groups.through.objects.filter(
            user_id=OuterRef("annotator_id"), group__name=SIMULATED_GROUP
        )
    )


def campaign_runs(campaign: Campaign) -> list[EvalRun]:
    return list(
        campaign.runs.select_related("model_version__family")
        .prefetch_related("model_version__aliases")
        .order_by("pk")
    )


def run_label(run: EvalRun) -> str:
    mv = run.model_version
    aliases = sorted(a.name for a in mv.aliases.all())
    tag = f" [{', '.join(aliases)}]" if aliases else ""
    return f"{mv.family.name} {mv.version}{tag} · run #{run.pk}"


def campaign_rows() -> QuerySet[Campaign]:
    """Campaigns with their task and rating counts: one COUNT subquery each, so a campaign's
    million ratings are counted on their index, never joined against its tasks."""

    def count(model: type[Task] | type[Rating]) -> Subquery:
        rows = model.objects.filter(campaign=OuterRef("pk")).order_by().values("campaign")
        return Subquery(rows.annotate(n=Count("pk")).values("n"), output_field=IntegerField())

    return Campaign.objects.select_related("dataset_version__dataset").annotate(
        n_tasks=Coalesce(count(Task), 0), n_ratings=Coalesce(count(Rating), 0)
    )


def campaign_snapshot_get(*, campaign: Campaign) -> CampaignSnapshot | None:
    """The stored report of the campaign (payload shape: `ratings.services.reports`), or None
    before its first computation."""
    return CampaignSnapshot.objects.filter(campaign=campaign).defer("agreement_codes").first()


def campaign_find(pk: int) -> Campaign | None:
    """The campaign, or None (a release reference names it by id)."""
    return Campaign.objects.filter(pk=pk).first()


def campaign_comparing(*, pairs: Sequence[tuple[int, int]]) -> Campaign | None:
    """The newest campaign that compares both runs of one of the pairs (first pair first)."""
    for a, b in pairs:
        found = Campaign.objects.filter(runs=a).filter(runs=b).order_by("-created_at", "-pk")
        if (campaign := found.first()) is not None:
            return campaign
    return None


def campaign_run_ids(campaign: Campaign) -> set[int]:
    """The ids of the runs the campaign compares."""
    return set(campaign.runs.values_list("pk", flat=True))


def snapshot_generations(*, campaign_ids: Collection[int]) -> dict[int, int]:
    """Per campaign, its snapshot generation now (0 before its first snapshot): a release
    report that read an older one is stale."""
    out = dict.fromkeys(campaign_ids, 0)
    rows = CampaignSnapshot.objects.filter(campaign_id__in=list(campaign_ids))
    out.update(dict(rows.values_list("campaign_id", "generation")))
    return out


def snapshots_fingerprint() -> str:
    """How many snapshots there are and when the newest was computed: changes whenever a
    snapshot is (re)computed (the leaderboard rebuilds on it)."""
    agg = CampaignSnapshot.objects.aggregate(n=Count("pk"), last=Max("computed_at"))
    return f"{agg['n']}:{agg['last'].isoformat() if agg['last'] else '-'}"


def rating_rows(campaign: Campaign) -> list[dict[str, Any]]:
    """One dict per rating with its task and run identity (the CSV/JSON export rows)."""
    rows = (
        Rating.objects.filter(campaign=campaign)
        .annotate(simulated=_simulated_annotator())
        .order_by("created_at", "pk")
        .values(
            "simulated",
            "pk",
            "task_id",
            "task__item_id",
            "task__item__stem",
            "task__stratum",
            "task__run_a_id",
            "task__run_b_id",
            "task__gold_winner",
            "assignment__left_is_a",
            "annotator__username",
            "shown_choice",
            "outcome",
            "score",
            "reasons",
            "seconds",
            "late",
            "created_at",
        )
    )
    return [dict(row) for row in rows]


def campaign_progress(*, campaign: Campaign, last_rating_id: int | None = None) -> dict[str, Any]:
    """Counts of tasks, ratings and live leases, all as SQL aggregates."""
    ratings = Rating.objects.filter(campaign=campaign)
    if last_rating_id is not None:
        ratings = ratings.filter(pk__lte=last_rating_id)
    tasks = Task.objects.filter(campaign=campaign)
    on_time = ratings.filter(late=False).values("task_id").annotate(n=Count("pk")).order_by()
    complete = on_time.filter(n__gte=campaign.overlap).count()
    totals = ratings.aggregate(n=Count("pk"), late=Count("pk", filter=Q(late=True)))
    rows = list(
        ratings.values("annotator__username")
        .annotate(n=Count("pk"), late=Count("pk", filter=Q(late=True)), last=Max("created_at"))
        .order_by("-n", "annotator__username")
    )
    simulated = simulated_usernames(usernames=[r["annotator__username"] for r in rows])
    annotators = [
        {
            **row,
            "last": row["last"].strftime("%Y-%m-%d %H:%M") if row["last"] else "",
            "simulated": row["annotator__username"] in simulated,
        }
        for row in rows
    ]
    n_tasks = tasks.count()
    return {
        "tasks": n_tasks,
        "by_stratum": dict(
            tasks.values_list("stratum").annotate(n=Count("pk")).values_list("stratum", "n")
        ),
        "ratings": totals["n"],
        "late": totals["late"],
        "needed": n_tasks * campaign.overlap,
        "complete_tasks": complete,
        "live_leases": Assignment.objects.filter(
            campaign=campaign, submitted_at__isnull=True, leased_until__gt=timezone.now()
        ).count(),
        "annotators": annotators,
    }
