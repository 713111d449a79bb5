"""Handing out tasks under leases, and storing ratings exactly once.

Why claims look like this: a task slot is taken by an `Assignment` row (submitted, or with an
unexpired lease); a task is open while it has fewer than k of them. Two annotators racing for the
last slot are serialised on the task row before the count is re-read inside the transaction:
PostgreSQL locks it with SELECT … FOR UPDATE SKIP LOCKED (a busy task is skipped, not waited on);
SQLite has no row locks, so a conditional UPDATE of the row takes its database-wide write lock
first. The unique (task, annotator) constraint makes "rates a task twice" impossible either way.
A submit after the lease expired is stored (paid work is never lost) and flagged late.
Which tasks a claim looks at (gold early and outside k, the side shown, decided pairs, routing,
the vote budget) is `ratings.services.serving`.

Leasing writes, so it happens on POST only (the rating pages' "start" / "lease" calls and every
submit); the pages' GETs read what the annotator already holds (`held_queue`, below).
One annotator's leasing calls (two tabs, a double click, a retried request) are serialised on
the annotator: the second waits for the first, then finds its leases held and claims nothing
more, so an annotator never holds more than the depth asked for (at most MAX_QUEUE_DEPTH) live
assignments in a campaign.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from evalsite.core.errors import Conflict, NotFound, Refused
from ratings.models import (
    REASON_KEYS,
    SHOWN_CHOICES,
    Assignment,
    Campaign,
    CampaignStatus,
    Mode,
    Rating,
    Stratum,
    Task,
    is_pairwise,
    outcome_of,
)
from ratings.services import serving
from ratings.services.reports import campaign_snapshot_mark_dirty

#: Live assignments an annotator holds: the task on screen plus one preloaded behind it (the
#: page without script, the default of every call).
QUEUE_DEPTH = 2
#: The most a caller may ask for. The rating page's script asks for more than the default: it
#: shows the next task at once and saves in the background, so it rates ahead of its saves by
#: about one round trip of tasks, and each of those must already be held and preloaded.
MAX_QUEUE_DEPTH = 10
#: Candidate tasks read per claim attempt: enough that 50 annotators racing for the same first
#: rows (all skip the locked ones) still find a free one without a second query.
CANDIDATES = 16
#: Candidate reads per fill when every free candidate was locked by a concurrent claimer: locks
#: last a few ms, so a second look almost always finds the slot; bounded so a request never spins.
CLAIM_ROUNDS = 3
MAX_SECONDS = 3600.0  # a page left open overnight is not 9 hours of work
#: High 32 bits of the PostgreSQL advisory-lock key of "one annotator leasing" (ASCII "RATE"),
#: the annotator's id in the low 32: no other lock of the project shares the space.
LEASE_LOCK_SPACE = 0x52415445


class RatingError(Refused):
    """A submit that cannot be stored; the message says what to fix."""


class CampaignClosed(RatingError, Conflict):
    """The campaign is not open (closed or still a draft): ratings are refused, not stored."""


class AssignmentNotFound(NotFound):
    """No assignment with this token belongs to this annotator."""


def _live(now: datetime, prefix: str = "") -> Q:
    return Q(**{f"{prefix}submitted_at__isnull": False}) | Q(**{f"{prefix}leased_until__gt": now})


def open_tasks(*, campaign: Campaign, user: User, now: datetime) -> QuerySet[Task]:
    """Non-gold tasks this annotator may still take: not theirs yet, fewer than k live claims,
    not in a decided pair, budget not spent (gold is served only next to these)."""
    if serving.budget_spent(campaign):
        return Task.objects.none()
    return (
        Task.objects.filter(campaign=campaign)
        .filter(serving.plain_tasks_q(campaign))
        .exclude(assignments__annotator=user)
        .annotate(live=Count("assignments", filter=_live(now, "assignments__")))
        .filter(live__lt=campaign.overlap)
    )


def _lock(task_id: int) -> bool:
    if connection.features.has_select_for_update_skip_locked:
        rows = Task.objects.select_for_update(skip_locked=True).filter(pk=task_id).order_by()
        return bool(list(rows.values_list("pk", flat=True)))
    return Task.objects.filter(pk=task_id).update(claim_version=F("claim_version") + 1) == 1


def _candidates(
    *, campaign: Campaign, user: User, now: datetime, pick: serving.Pick = serving.ALL
) -> tuple[list[int], int]:
    """Up to CANDIDATES open task ids (fullest first, so items reach k raters before new ones
    start) and the number of open tasks in all, in one query: this runs on every submit.
    Gold tasks are open to every annotator once (no k); `pick` narrows the read."""
    task, assignment = Task._meta.db_table, Assignment._meta.db_table
    where = ["t.stratum = %s" if pick.gold else "t.stratum <> %s"]
    extra: list[str | int] = [Stratum.GOLD.value]
    if pick.pair is not None:
        where.append("t.run_a_id = %s AND t.run_b_id = %s")
        extra += list(pick.pair)
    if pick.stratum is not None:
        where.append("t.stratum = %s")
        extra.append(pick.stratum)
    for a, b in sorted(pick.exclude):
        where.append("NOT (t.run_a_id = %s AND t.run_b_id = %s)")
        extra += [a, b]
    sql = f"""
        SELECT t.id, COUNT(*) OVER () FROM {task} t
        LEFT JOIN {assignment} a ON a.task_id = t.id
             AND (a.submitted_at IS NOT NULL OR a.leased_until > %s)
        WHERE t.campaign_id = %s AND {" AND ".join(where)} AND NOT EXISTS (
            SELECT 1 FROM {assignment} m WHERE m.task_id = t.id AND m.annotator_id = %s)
        GROUP BY t.id, t."order"
        HAVING COUNT(a.id) < %s
        ORDER BY COUNT(a.id) DESC, t."order" ASC
        LIMIT %s"""
    params = [
        connection.ops.adapt_datetimefield_value(now),
        campaign.pk,
        *extra,
        user.pk,
        # gold: any number of annotators, each once
        2**31 - 1 if pick.gold else campaign.overlap,
        CANDIDATES,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [int(r[0]) for r in rows], int(rows[0][1]) if rows else 0


class _Busy:
    """A candidate another claimer holds locked right now (it may still have a free slot)."""


BUSY = _Busy()


class _Spent:
    """The campaign's vote budget is used up: nothing more is handed out."""


SPENT = _Spent()


def _claim_one(
    *, campaign: Campaign, user: User, now: datetime, task_id: int, gold: bool = False
) -> Assignment | _Busy | _Spent | None:
    try:
        with transaction.atomic():
            if not _lock(task_id):
                return BUSY
            if not gold and serving.budget_spent(campaign, lock=True):
                return SPENT
            counts = Assignment.objects.filter(task_id=task_id).aggregate(
                live=Count("pk", filter=_live(now)), mine=Count("pk", filter=Q(annotator=user))
            )
            if (not gold and counts["live"] >= campaign.overlap) or counts["mine"]:
                return None
            return Assignment.objects.create(
                task_id=task_id,
                campaign=campaign,
                annotator=user,
                left_is_a=serving.side_left_is_a(
                    seed=campaign.seed,
                    task_order=Task.objects.values_list("order", flat=True).get(pk=task_id),
                    annotator=user.username,
                ),
                leased_until=now + timedelta(seconds=campaign.lease_seconds),
            )
    except IntegrityError:  # the same annotator claiming twice at once (two tabs)
        return None


@contextmanager
def _annotator_serialised(user: User) -> Iterator[None]:
    """A transaction in which no other leasing call of this annotator runs.

    PostgreSQL: a transaction-scoped advisory lock keyed on the annotator (released at commit,
    other annotators never wait on it). SQLite: its single write lock, taken up front by a write
    statement that matches no row, so the queue read below already sees every committed claim.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                key = (LEASE_LOCK_SPACE << 32) | (int(user.pk) & 0xFFFFFFFF)
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
        else:
            Assignment.objects.filter(annotator=user, pk__lt=0).update(
                leased_until=F("leased_until")
            )
        yield


def pending(*, user: User, campaign: Campaign, now: datetime) -> list[Assignment]:
    return list(
        Assignment.objects.filter(
            campaign=campaign, annotator=user, submitted_at__isnull=True, leased_until__gt=now
        ).select_related("task")
    )


def held_campaign(*, user: User, now: datetime, attributes: bool) -> Campaign | None:
    """The open campaign (attribute labelling or not) of the annotator's oldest live lease."""
    held = (
        Assignment.objects.filter(
            annotator=user,
            submitted_at__isnull=True,
            leased_until__gt=now,
            campaign__status=CampaignStatus.OPEN,
        )
        .filter(
            Q(campaign__mode=Mode.ATTRIBUTES) if attributes else ~Q(campaign__mode=Mode.ATTRIBUTES)
        )
        .select_related("campaign")
        .order_by("created_at", "pk")
        .first()
    )
    return None if held is None else held.campaign


@dataclass(frozen=True)
class Queue:
    """The annotator's live assignments (current first) in `campaign`, and their progress."""

    campaign: Campaign | None
    assignments: list[Assignment]
    done: int = 0
    total: int = 0


def _fill(*, campaign: Campaign, user: User, now: datetime, depth: int) -> Queue:
    with _annotator_serialised(user):
        queue = pending(user=user, campaign=campaign, now=now)
        held = len(queue)
        open_total = _claim_until(campaign=campaign, user=user, now=now, depth=depth, queue=queue)
    if not queue:
        return Queue(None, [])
    done = Rating.objects.filter(campaign=campaign, annotator=user).count()
    if open_total is None:  # read after the claims: what is held now plus what is still open
        open_now = open_tasks(campaign=campaign, user=user, now=now).count()
        return Queue(campaign, queue, done, done + len(queue) + open_now)
    # Read before the claims: the plain tasks claimed are in it, the gold ones (outside the
    # open count, which is plain work only) are added, as the read-only page counts them.
    gold = sum(a.task.stratum == Stratum.GOLD for a in queue[held:])
    return Queue(campaign, queue, done, done + held + open_total + gold)


def _claim_until(
    *, campaign: Campaign, user: User, now: datetime, depth: int, queue: list[Assignment]
) -> int | None:
    """Claim into `queue` until it holds `depth`; the open-task count first read, if any.

    Non-gold tasks are read in the order `serving.plain_picks` gives (the fixed plan: one read
    over all; until decided: open pairs by routing priority). Before each non-gold claim, gold
    is claimed while the annotator's gold plan asks for it (`serving.GoldPlan`), so gold is only
    ever handed out next to real work."""
    if len(queue) >= depth:
        return None
    plan = serving.gold_plan(campaign=campaign, user=user)
    open_total: int | None = None
    for _ in range(CLAIM_ROUNDS):
        busy = False
        for pick in serving.plain_picks(campaign=campaign, user=user):
            candidates, total = _candidates(campaign=campaign, user=user, now=now, pick=pick)
            if open_total is None and pick.pair is None and pick.stratum is None:
                open_total = total
            for task_id in candidates:
                if plan.wants_gold() and len(queue) < depth:
                    busy = _claim_gold(campaign=campaign, user=user, now=now, queue=queue,
                                       depth=depth, plan=plan) or busy  # fmt: skip
                if len(queue) >= depth:
                    break
                claimed = _claim_one(campaign=campaign, user=user, now=now, task_id=task_id)
                if claimed is SPENT:
                    return 0
                busy = busy or claimed is BUSY
                if isinstance(claimed, Assignment):
                    queue.append(claimed)
                    plan.took(gold=False)
            if len(queue) >= depth:
                break
        if len(queue) >= depth or not busy:  # nothing was skipped: what is left is really full
            break
    return open_total


def _claim_gold(
    *,
    campaign: Campaign,
    user: User,
    now: datetime,
    queue: list[Assignment],
    depth: int,
    plan: serving.GoldPlan,
) -> bool:
    """Claim gold tasks while the plan asks for them; True if a gold task was busy."""
    busy = False
    gold, _ = _candidates(campaign=campaign, user=user, now=now, pick=serving.GOLD)
    for task_id in gold:
        if len(queue) >= depth or not plan.wants_gold():
            break
        claimed = _claim_one(campaign=campaign, user=user, now=now, task_id=task_id, gold=True)
        busy = busy or claimed is BUSY
        if isinstance(claimed, Assignment):
            queue.append(claimed)
            plan.took(gold=True)
    if not gold:
        plan.has_gold = False  # every gold task rated by this annotator: no more to ask for
    return busy


def assignment_queue(
    *,
    user: User,
    campaign: Campaign | None = None,
    prefer: Campaign | None = None,
    depth: int = QUEUE_DEPTH,
) -> Queue:
    """The annotator's current and preloaded assignments (oldest first), topped up to `depth`.

    A reload returns the same current assignment while its lease lasts. Without `campaign`, the
    `prefer`red campaign (the one just rated in; by default the one the annotator holds a live
    lease in) is tried first, then open campaigns oldest first.
    """
    now = timezone.now()
    if campaign is not None:
        return _fill(campaign=campaign, user=user, now=now, depth=depth)
    if prefer is None:
        prefer = held_campaign(user=user, now=now, attributes=False)
    # Attribute-labelling campaigns are served by their own page (ratings.views.attributes).
    if (
        prefer is not None
        and prefer.status == CampaignStatus.OPEN
        and (prefer.mode != Mode.ATTRIBUTES)
    ):
        queue = _fill(campaign=prefer, user=user, now=now, depth=depth)
        if queue.assignments:
            return queue
    others = (
        Campaign.objects.filter(status=CampaignStatus.OPEN)
        .exclude(mode=Mode.ATTRIBUTES)
        .order_by("created_at", "pk")
    )
    for c in others.exclude(pk=prefer.pk) if prefer is not None else others:
        queue = _fill(campaign=c, user=user, now=now, depth=depth)
        if queue.assignments:
            return queue
    return Queue(None, [])


@dataclass(frozen=True)
class Held:
    """An annotator's live leases as they are, read without claiming anything (the GET pages).

    `campaign` is the one the page is about: the campaign of the held leases, else the open
    campaign a lease POST would claim in first (None: no work for this annotator anywhere).
    `available` says a lease POST would find open tasks there.
    """

    campaign: Campaign | None
    assignments: list[Assignment] = field(default_factory=list)
    done: int = 0
    total: int = 0
    available: bool = False


def held_queue(*, user: User, attributes: bool) -> Held:
    """Read only: the annotator's current and preloaded assignments (oldest first) and progress,
    in attribute-labelling campaigns or in rating ones, in the campaign order leasing uses."""
    now = timezone.now()
    campaign = held_campaign(user=user, now=now, attributes=attributes)
    if campaign is None:
        candidates = Campaign.objects.filter(status=CampaignStatus.OPEN).order_by(
            "created_at", "pk"
        )
        candidates = (
            candidates.filter(mode=Mode.ATTRIBUTES)
            if attributes
            else candidates.exclude(mode=Mode.ATTRIBUTES)
        )
        campaign = next(
            (c for c in candidates if open_tasks(campaign=c, user=user, now=now).exists()), None
        )
        if campaign is None:
            return Held(None)
    held = pending(user=user, campaign=campaign, now=now)
    open_count = open_tasks(campaign=campaign, user=user, now=now).count()
    done = Rating.objects.filter(campaign=campaign, annotator=user).count()
    return Held(
        campaign, held[:MAX_QUEUE_DEPTH], done, done + len(held) + open_count, open_count > 0
    )


@dataclass(frozen=True)
class InboxEntry:
    """One kind of task an annotator has open: how many they may still take or hold."""

    mode: str
    label: str
    tasks: int
    campaigns: int


INBOX_LABELS = {
    Mode.PAIRWISE: "Compare two cutouts",
    Mode.ABSOLUTE: "Score one cutout",
    Mode.INSTANCES: "Compare two lifted subjects",
    Mode.ATTRIBUTES: "Label people in photos",
}


def inbox(*, user: User) -> list[InboxEntry]:
    """Read only: every task kind with work for this annotator in open campaigns (held leases
    plus tasks they may still take), in the order the pages continue with them."""
    now = timezone.now()
    counts: dict[str, list[int]] = {}
    for campaign in Campaign.objects.filter(status=CampaignStatus.OPEN).order_by(
        "created_at", "pk"
    ):
        n = open_tasks(campaign=campaign, user=user, now=now).count() + len(
            pending(user=user, campaign=campaign, now=now)
        )
        if n:
            entry = counts.setdefault(campaign.mode, [0, 0])
            entry[0] += n
            entry[1] += 1
    return [
        InboxEntry(mode, INBOX_LABELS[Mode(mode)], tasks, campaigns)
        for mode, (tasks, campaigns) in counts.items()
    ]


@dataclass(frozen=True)
class Submitted:
    rating: Rating
    created: bool


def _clean(
    campaign: Campaign, choice: str | None, score: int | None, reasons: Any
) -> tuple[str, int | None, list[str]]:
    if is_pairwise(campaign.mode):
        if choice not in SHOWN_CHOICES:
            raise RatingError(f"choice: expected one of {', '.join(SHOWN_CHOICES)}")
        score = None
    else:
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
            raise RatingError("score: expected a whole number from 1 to 5")
        choice = ""
    tags = [str(r) for r in (reasons or [])]
    unknown = sorted(set(tags) - REASON_KEYS)
    if unknown:
        raise RatingError(f"reasons: unknown tag(s) {unknown}; known: {sorted(REASON_KEYS)}")
    return choice or "", score, sorted(set(tags))


def rating_submit(
    *,
    user: User,
    token: str,
    choice: str | None = None,
    score: int | None = None,
    reasons: Any = (),
    seconds: float = 0.0,
) -> Submitted:
    """Store the rating of one assignment; a repeated submit returns the stored one unchanged."""
    assignment = (
        Assignment.objects.select_related("campaign").filter(token=token, annotator=user).first()
    )
    if assignment is None:
        raise AssignmentNotFound("this task is not yours or does not exist")
    if assignment.campaign.status != CampaignStatus.OPEN:
        raise CampaignClosed("this campaign is closed: ratings are no longer accepted")
    if assignment.submitted_at is not None:  # a double submit: keep the first rating
        return Submitted(Rating.objects.get(assignment=assignment), False)
    shown, score, tags = _clean(assignment.campaign, choice, score, reasons)
    now = timezone.now()
    try:
        with transaction.atomic():
            rating = Rating.objects.create(
                assignment=assignment,
                task_id=assignment.task_id,
                campaign=assignment.campaign,
                annotator=user,
                shown_choice=shown,
                outcome=outcome_of(shown, left_is_a=assignment.left_is_a) if shown else "",
                score=score,
                reasons=tags,
                seconds=min(max(float(seconds or 0.0), 0.0), MAX_SECONDS),
                late=now > assignment.leased_until,
            )
            Assignment.objects.filter(pk=assignment.pk, submitted_at__isnull=True).update(
                submitted_at=now
            )
    except IntegrityError:  # a double submit racing this one stored it first
        return Submitted(Rating.objects.get(assignment=assignment), False)
    campaign_snapshot_mark_dirty(campaign_id=assignment.campaign_id)
    return Submitted(rating, True)
