"""Simulated raters: users marked `simulated` whose votes go through the real rating service.

Why through the service: the demo's votes must reach the campaign's snapshot, QC, agreement and
the release report exactly as a person's do (leases, side randomisation, `rating_submit`), so what
the demo shows is what the platform computes. What each rater answers is the documented rule of
`pipelines.stats.simulated_raters`; who is simulated is the `simulated` group, read by every page
and export that lists raters or votes.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction

from evalsite.core.roles import ANNOTATOR, ensure_role_groups
from pipelines.stats.simulated_raters import (
    DEFAULT_SEED,
    clicker_answer,
    scripted_answer,
    shown_choice,
)
from ratings.models import SIMULATED_GROUP, Campaign, is_pairwise
from ratings.services.assign import assignment_queue, rating_submit

#: Seconds a simulated rating records (a plausible time on task; QC's timing columns stay sane).
SIMULATED_SECONDS = 6.0


@dataclass(frozen=True)
class SeededVotes:
    added: int
    by_rater: dict[str, int]


def simulated_rater_ensure(*, username: str) -> User:
    """An annotator marked simulated that nobody can sign in as (idempotent)."""
    if not username.strip():
        raise ValueError("username: give the simulated rater a name")
    ensure_role_groups()
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username)
        if created or user.has_usable_password():
            user.set_unusable_password()
            user.save(update_fields=["password"])
        simulated, _ = Group.objects.get_or_create(name=SIMULATED_GROUP)
        user.groups.add(simulated, Group.objects.get(name=ANNOTATOR))
    return user


def task_key(task: Any) -> int:
    """A task's identity for the raters' generators: its item's stem and stratum, not its primary
    key, so the same campaign gets the same votes on any database (sequences differ between
    PostgreSQL runs, and with them every draw)."""
    return zlib.crc32(f"{task.item.stem}|{task.stratum}".encode())


def simulated_votes_seed(
    *,
    campaign: Campaign,
    scripted: Sequence[User],
    clickers: Sequence[User] = (),
    seed: int = DEFAULT_SEED,
) -> SeededVotes:
    """Let each simulated rater rate every task still open to them, through `rating_submit`.

    Scripted raters answer by the IoU rule, clickers at random (pipelines.stats.simulated_raters).
    Idempotent: a rater who already rated a task is never served it again, so a second call adds
    only votes for tasks that appeared since.
    """
    if not is_pairwise(campaign.mode):
        raise ValueError(f"campaign {campaign.pk} is {campaign.mode}; simulated votes are pairwise")
    everyone = (*scripted, *clickers)
    marked = set(
        User.objects.filter(pk__in=[u.pk for u in everyone], groups__name=SIMULATED_GROUP)
        .values_list("pk", flat=True)
    )  # fmt: skip
    unmarked = [u.username for u in everyone if u.pk not in marked]
    if unmarked:
        raise ValueError(f"not marked simulated: {', '.join(unmarked)} (simulated_rater_ensure)")
    by_rater: dict[str, int] = {}
    raters = [(u, True) for u in scripted] + [(u, False) for u in clickers]
    for index, (user, is_scripted) in enumerate(raters):
        added = 0
        while True:
            queue = assignment_queue(user=user, campaign=campaign)
            if not queue.assignments:
                break
            for assignment in queue.assignments:
                task = assignment.task
                key = task_key(task)
                if is_scripted:
                    answer = scripted_answer(task.iou_a, task.iou_b, seed=seed, rater=index,
                                             task=key)  # fmt: skip
                else:
                    answer = clicker_answer(seed=seed, rater=index, task=key)
                submitted = rating_submit(
                    user=user,
                    token=assignment.token,
                    choice=shown_choice(answer, left_is_a=assignment.left_is_a),
                    seconds=SIMULATED_SECONDS,
                )
                added += int(submitted.created)
        by_rater[user.username] = added
    return SeededVotes(sum(by_rater.values()), by_rater)
