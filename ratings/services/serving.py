"""What a claim may take next: gold early, which side is shown, decided pairs, the vote budget.

Task assignment (`ratings.services.assign`) owns leases and the k-overlap count; this module
decides *which* tasks a claim looks at:

- Gold early: an annotator's first task is gold, then every other task until they have
  `min_gold` gold tasks (so QC can score them from their first minutes), then gold at the
  campaign's gold share. Gold tasks are not held to k: each annotator may rate each gold task
  once, so gold never runs out for the 30th annotator. Gold is only handed out next to real work:
  an annotator with no non-gold task left gets nothing (gold alone measures no run).
- Sides: which run is shown on the left is drawn per task and annotator from the campaign's seed
  (reproducible, recorded on the assignment), so side preference can be estimated.
- Until decided: tasks of a pair whose sequential decision is stored in `PairState` are not
  handed out; open pairs are tried in routing-priority order (`pipelines.stats.routing`), with a
  uniform share kept for the control stratum; when live claims reach the vote budget nothing
  more is handed out. The budget check runs under a lock on the campaign row (PostgreSQL:
  SELECT … FOR UPDATE; SQLite: its single write lock is already held by the claim), so two
  claimers racing for the last vote of the budget cannot both get it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from pipelines.stats import routing
from ratings.models import Assignment, Campaign, PairState, Stopping, Stratum, Task, is_pairwise
from ratings.services.sequential import UNSEEN_PRIORITY


@dataclass(frozen=True)
class Pick:
    """Which tasks one candidate read looks at: gold or not, optionally one pair or stratum,
    never the excluded (decided) pairs."""

    gold: bool = False
    pair: tuple[int, int] | None = None
    stratum: str | None = None
    exclude: frozenset[tuple[int, int]] = frozenset()


ALL = Pick()
GOLD = Pick(gold=True)


def side_left_is_a(*, seed: int, task_order: int, annotator: str) -> bool:
    """Whether run a is shown on the left: a fair coin per (campaign seed, task, annotator).

    A hash, not a stored generator, so the draw does not depend on the order claims arrive in;
    keyed by the task's place in the campaign and the annotator's username (not database ids), so
    a rerun of the same campaign shows the same sides on any database."""
    key = f"{seed}:{task_order}:{annotator}".encode()
    return bool(hashlib.blake2b(key, digest_size=8).digest()[0] & 1)


def until_decided(campaign: Campaign) -> bool:
    return is_pairwise(campaign.mode) and campaign.stopping == Stopping.UNTIL_DECIDED


def decided_pairs(campaign: Campaign) -> set[tuple[int, int]]:
    """(run a, run b) of the pairs the last snapshot found decided (empty for a fixed plan)."""
    if not until_decided(campaign):
        return set()
    return set(
        PairState.objects.filter(campaign=campaign)
        .exclude(decision="")
        .values_list("run_a_id", "run_b_id")
    )


def open_pair_priorities(campaign: Campaign) -> dict[tuple[int, int], float]:
    """Routing priority of each still-open pair with a stored state (a pair never computed yet
    is absent: the caller treats it as the most uncertain)."""
    return {
        (a, b): float(p) if p < UNSEEN_PRIORITY else float("inf")
        for a, b, p in PairState.objects.filter(campaign=campaign, decision="").values_list(
            "run_a_id", "run_b_id", "priority"
        )
    }


def plain_tasks_q(campaign: Campaign, prefix: str = "") -> Q:
    """Non-gold tasks that may still be served: the whole plan, less decided pairs."""
    q = ~Q(**{f"{prefix}stratum": Stratum.GOLD})
    for a, b in decided_pairs(campaign):
        q &= ~Q(**{f"{prefix}run_a_id": a, f"{prefix}run_b_id": b})
    return q


def budget_spent(campaign: Campaign, *, lock: bool = False) -> bool:
    """True when the campaign's live non-gold claims (submitted or leased) reach its budget.

    `lock=True` (inside the claim's transaction) first locks the campaign row on PostgreSQL, so
    the count and the claim that follows are one step for every concurrent claimer."""
    if not until_decided(campaign) or campaign.vote_budget is None:
        return False
    if lock and connection.vendor == "postgresql":
        list(Campaign.objects.select_for_update().filter(pk=campaign.pk).values_list("pk"))
    now = timezone.now()
    live = (
        Assignment.objects.filter(campaign=campaign)
        .exclude(task__stratum=Stratum.GOLD)
        .filter(Q(submitted_at__isnull=False) | Q(leased_until__gt=now))
        .count()
    )
    return live >= campaign.vote_budget


@dataclass
class GoldPlan:
    """How many gold and non-gold tasks an annotator holds or rated in a campaign."""

    share: float
    min_gold: int
    has_gold: bool
    gold: int = 0
    plain: int = 0

    def wants_gold(self) -> bool:
        if not self.has_gold:
            return False
        if self.gold < self.min_gold:
            return self.gold <= self.plain  # gold first, then every other task
        return self.gold < self.share * (self.gold + self.plain + 1)

    def took(self, *, gold: bool) -> None:
        if gold:
            self.gold += 1
        else:
            self.plain += 1


def gold_plan(*, campaign: Campaign, user: User) -> GoldPlan:
    has_gold = (
        is_pairwise(campaign.mode)
        and campaign.gold_ratio > 0
        and Task.objects.filter(campaign=campaign, stratum=Stratum.GOLD).exists()
    )
    counts = Assignment.objects.filter(campaign=campaign, annotator=user).aggregate(
        gold=Count("pk", filter=Q(task__stratum=Stratum.GOLD)),
        plain=Count("pk", filter=~Q(task__stratum=Stratum.GOLD)),
    )
    return GoldPlan(
        share=campaign.gold_ratio,
        min_gold=campaign.min_gold,
        has_gold=has_gold,
        gold=counts["gold"],
        plain=counts["plain"],
    )


def plain_picks(*, campaign: Campaign, user: User) -> list[Pick]:
    """The non-gold reads of one claim, in order (the first with a free task wins).

    Fixed plan: one read over every task. Until decided: decided pairs excluded; the open pair
    the routing sampler draws first (its control tasks, whose votes move the decision, then its
    other tasks), then the other open pairs by priority, then any open task."""
    if not until_decided(campaign):
        return [ALL]
    exclude = frozenset(decided_pairs(campaign))
    picks = []
    for pair in routing_order(campaign=campaign, user=user, decided=exclude):
        picks += [Pick(pair=pair, stratum=Stratum.CONTROL, exclude=exclude),
                  Pick(pair=pair, exclude=exclude)]  # fmt: skip
    return [*picks, Pick(exclude=exclude)]


def routing_order(
    *, campaign: Campaign, user: User, decided: frozenset[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Open pairs: the one `pipelines.stats.routing.pick` draws first (in proportion to the
    stored priority, a uniform share over the open pairs; a pair no snapshot has computed yet is
    at infinity), then the rest by priority. The draw is seeded by the campaign, the annotator and
    how many tasks they took, so a rerun routes alike.

    Only open pairs are arms: the routing core's control share also draws decided pairs (to keep
    sampling them uniformly), but a decided pair gets no more tasks here; its control votes up to
    the decision are already a uniform sample."""
    runs = sorted(campaign.runs.values_list("pk", flat=True))
    stored = open_pair_priorities(campaign)
    arms = [p for p in combinations(runs, 2) if p not in decided]
    if not arms:
        return []
    priority = np.asarray([stored.get(p, np.inf) for p in arms], dtype=np.float64)
    taken = Assignment.objects.filter(campaign=campaign, annotator=user).count()
    rng = np.random.default_rng([campaign.seed, int(user.pk), taken])
    first = routing.pick(priority, rng, control_share=routing.DEFAULT_CONTROL_SHARE)
    rest = sorted(range(len(arms)), key=lambda i: -priority[i])
    order = ([first.arm] if first is not None else []) + rest
    return [arms[i] for i in dict.fromkeys(order)]
