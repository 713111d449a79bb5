"""Assignment under leases and idempotent, late-flagged submits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ratings.models import Assignment, Outcome, Rating, Task
from ratings.services.assign import (
    AssignmentNotFound,
    RatingError,
    assignment_queue,
    rating_submit,
)
from tests.ratings.builders import World, open_campaign

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def test_queue_holds_current_and_preloaded_and_survives_a_reload(world: World) -> None:
    campaign = open_campaign(world)
    ann = world.annotators[0]
    q = assignment_queue(user=ann)
    queue = q.assignments
    assert q.campaign == campaign and len(queue) == 2
    assert queue[0].task_id != queue[1].task_id
    again = assignment_queue(user=ann).assignments
    assert [a.pk for a in again] == [a.pk for a in queue]  # reload resumes, no new claims


def test_no_task_gets_more_than_k_live_claims(world: World) -> None:
    campaign = open_campaign(world, overlap=2)
    for ann in world.annotators:  # 3 annotators, k = 2, 4 tasks: the third finds 0 fresh ones
        for _ in range(4):
            queue = assignment_queue(user=ann).assignments
            if not queue:
                break
            rating_submit(user=ann, token=queue[0].token, choice="left")
    for task in Task.objects.filter(campaign=campaign):
        assert task.assignments.count() <= 2
    assert Rating.objects.count() == 8
    assert Rating.objects.values("task", "annotator").distinct().count() == 8


def test_expired_lease_frees_the_slot_and_the_late_submit_is_kept_and_flagged(
    world: World,
) -> None:
    campaign = open_campaign(world, overlap=1, items_per_pair=1)
    first, second = world.annotators[:2]
    (mine,) = assignment_queue(user=first).assignments
    assert assignment_queue(user=second).assignments == []
    Assignment.objects.filter(pk=mine.pk).update(leased_until=timezone.now() - timedelta(1))
    (theirs,) = assignment_queue(user=second).assignments
    assert theirs.task_id == mine.task_id
    rating_submit(user=second, token=theirs.token, choice="tie")
    late = rating_submit(user=first, token=mine.token, choice="left").rating
    assert late.late and late.pk
    assert Rating.objects.filter(task_id=mine.task_id).count() == 2  # k + 1, the extra is late
    assert Rating.objects.filter(task_id=mine.task_id, late=False).count() == 1
    assert campaign.ratings.count() == 2


def test_a_double_submit_stores_one_rating(world: World) -> None:
    open_campaign(world)
    ann = world.annotators[0]
    queue = assignment_queue(user=ann).assignments
    one = rating_submit(user=ann, token=queue[0].token, choice="right", reasons=["edges"])
    two = rating_submit(user=ann, token=queue[0].token, choice="left")
    assert one.created and not two.created
    assert one.rating.pk == two.rating.pk
    assert Rating.objects.count() == 1
    stored = Rating.objects.get()
    assert stored.shown_choice == "right" and stored.reasons == ["edges"]


def test_choice_is_mapped_to_run_identity(world: World) -> None:
    open_campaign(world)
    ann = world.annotators[0]
    queue = assignment_queue(user=ann).assignments
    a = queue[0]
    rating = rating_submit(user=ann, token=a.token, choice="left").rating
    assert rating.outcome == (Outcome.A if a.left_is_a else Outcome.B)


def test_someone_elses_token_and_bad_values_are_refused(world: World) -> None:
    open_campaign(world)
    ann, other = world.annotators[:2]
    queue = assignment_queue(user=ann).assignments
    with pytest.raises(AssignmentNotFound):
        rating_submit(user=other, token=queue[0].token, choice="left")
    with pytest.raises(RatingError, match="choice"):
        rating_submit(user=ann, token=queue[0].token, choice="model-a")
    with pytest.raises(RatingError, match="reasons"):
        rating_submit(user=ann, token=queue[0].token, choice="left", reasons=["iou"])
    assert not Rating.objects.exists()


def test_absolute_mode_takes_scores(world: World) -> None:
    open_campaign(world, mode="absolute", items_per_pair=2)
    ann = world.annotators[0]
    queue = assignment_queue(user=ann).assignments
    with pytest.raises(RatingError, match="score"):
        rating_submit(user=ann, token=queue[0].token, score=6)
    assert rating_submit(user=ann, token=queue[0].token, score=4).rating.score == 4


def test_progress_counts_done_of_available(world: World) -> None:
    campaign = open_campaign(world)
    ann = world.annotators[0]
    q = assignment_queue(user=ann)
    assert (q.campaign, q.done, q.total) == (campaign, 0, 4)
    rating_submit(user=ann, token=q.assignments[0].token, choice="tie")
    q = assignment_queue(user=ann)
    assert (q.done, q.total) == (1, 4)


def test_draft_and_closed_campaigns_hand_out_nothing(world: World) -> None:
    open_campaign(world, open_now=False)
    assert assignment_queue(user=world.annotators[0]).campaign is None
