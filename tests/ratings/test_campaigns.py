"""Campaign creation: strata, gold from gross failures only, validation, production anchor."""

from __future__ import annotations

from typing import Any

import pytest

from ratings.models import CampaignStatus, Stratum, Task
from ratings.services.campaigns import CampaignError, campaign_create
from tests.ratings.builders import World, build_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def test_it_builds_control_disagreement_and_gold_strata(db: Any, tmp_path: Any) -> None:
    world = build_world(tmp_path, n=16)
    campaign = campaign_create(
        name="c",
        dataset_version=world.version,
        runs=world.runs,
        items_per_pair=12,
        disagreement_share=0.5,
        gold_ratio=0.15,
        seed=1,
    )
    tasks = list(Task.objects.filter(campaign=campaign))
    by = {s: [t for t in tasks if t.stratum == s] for s in Stratum.values}
    assert len(by[Stratum.CONTROL]) == 6
    assert len(by[Stratum.DISAGREEMENT]) == 6
    # Disagreement takes the most divergent of the items left after the control draw and gold.
    control_items = {t.item_id for t in by[Stratum.CONTROL]}
    gold_items = {t.item_id for t in by[Stratum.GOLD]}
    rest = [t for t in tasks if t.item_id not in control_items | gold_items]
    assert min(t.divergence for t in by[Stratum.DISAGREEMENT]) >= max(
        (t.divergence for t in rest if t.stratum != Stratum.DISAGREEMENT), default=0.0
    )
    assert len(by[Stratum.GOLD]) == 2  # 15 % of 14 tasks
    for t in by[Stratum.GOLD]:
        assert t.gold_winner == "a"  # run 0 is the truth, run 1 missed the subject
        assert t.iou_a - t.iou_b >= 0.3 and t.iou_b < 0.5
        assert t.item_id not in control_items
    assert sorted(t.order for t in tasks) == list(range(len(tasks)))
    assert campaign.reference_run_id == world.runs[0].pk  # the production run anchors BT
    assert campaign.status == CampaignStatus.DRAFT


def test_gold_never_comes_from_close_pairs(db: Any, tmp_path: Any) -> None:
    world = build_world(tmp_path, runs=3)
    campaign = campaign_create(
        name="c", dataset_version=world.version, runs=world.runs, items_per_pair=2, gold_ratio=0.15
    )
    gold = Task.objects.filter(campaign=campaign, stratum=Stratum.GOLD)
    assert gold.exists()
    for t in gold:
        assert abs(t.iou_a - t.iou_b) >= 0.3
    pairs = {(t.run_a_id, t.run_b_id) for t in Task.objects.filter(campaign=campaign)}
    assert len(pairs) == 3  # every pair of three runs


def test_absolute_mode_has_one_task_per_item_and_run(world: World) -> None:
    campaign = campaign_create(
        name="abs",
        dataset_version=world.version,
        runs=world.runs,
        mode="absolute",
        items_per_pair=3,
    )
    tasks = Task.objects.filter(campaign=campaign)
    assert tasks.count() == 6
    assert not tasks.filter(stratum=Stratum.GOLD).exists()
    assert not tasks.filter(run_b__isnull=False).exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"runs_slice": 1}, "runs"),
        ({"overlap": 0}, "overlap"),
        ({"disagreement_share": 1.5}, "disagreement_share"),
        ({"name": " "}, "name"),
        ({"gold_ratio": 0.5}, "gold_ratio"),
        ({"gold_ratio": 0.04}, "gold_ratio"),
        ({"stopping": "whenever"}, "stopping"),
        ({"stopping": "until_decided", "vote_budget": 0}, "vote_budget"),
        ({"vote_budget": 100}, "vote_budget"),  # a fixed plan has no budget
        ({"stopping": "until_decided", "mode": "absolute"}, "stopping"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 0.7}, "alpha"),
        ({"margin": 0.5}, "margin"),
        ({"margin": -0.1}, "margin"),
    ],
)
def test_it_refuses_bad_input_naming_the_field(world: World, kwargs: dict, field: str) -> None:
    runs = world.runs[: kwargs.pop("runs_slice", None) or None]
    args = {"name": "c", "dataset_version": world.version, "runs": runs, **kwargs}
    with pytest.raises(CampaignError, match=field):
        campaign_create(**args)
    assert not Task.objects.exists()


def test_gold_is_reserved_before_control_and_disagreement_take_the_gross_failures(
    db: Any, tmp_path: Any
) -> None:
    # Given a pair whose 8 gross failures (even items) are among 16 items, and a plan as large
    # as the set (control + disagreement would take every item if they chose first)
    world = build_world(tmp_path, n=16)
    campaign = campaign_create(
        name="c", dataset_version=world.version, runs=world.runs, items_per_pair=16,
        gold_ratio=0.1, seed=3,
    )  # fmt: skip
    tasks = list(Task.objects.filter(campaign=campaign))
    gold = [t for t in tasks if t.stratum == Stratum.GOLD]
    plain = [t for t in tasks if t.stratum != Stratum.GOLD]
    # Then gold got its share first (round(0.1 * 16 / 0.9) = 2) and the rest fills the plan
    assert len(gold) == 2 and len(plain) == 14
    assert {t.item_id for t in gold}.isdisjoint({t.item_id for t in plain})
    assert all(t.gold_winner == "a" for t in gold)
    share = len(gold) / len(tasks)
    assert 0.05 <= share <= 0.15
    assert campaign.gold_ratio == 0.1


def test_gold_share_zero_builds_no_gold_and_small_campaigns_get_one(world: World) -> None:
    none = campaign_create(
        name="n", dataset_version=world.version, runs=world.runs, items_per_pair=3, gold_ratio=0
    )
    assert not Task.objects.filter(campaign=none, stratum=Stratum.GOLD).exists()
    small = campaign_create(
        name="s", dataset_version=world.version, runs=world.runs, items_per_pair=3,
        gold_ratio=0.05,
    )  # fmt: skip
    assert Task.objects.filter(campaign=small, stratum=Stratum.GOLD).count() == 1


def test_until_decided_settings_are_stored(world: World) -> None:
    campaign = campaign_create(
        name="u", dataset_version=world.version, runs=world.runs, items_per_pair=3,
        stopping="until_decided", vote_budget=40, alpha=0.1, margin=0.1,
    )  # fmt: skip
    campaign.refresh_from_db()
    assert (campaign.stopping, campaign.vote_budget, campaign.alpha, campaign.margin) == (
        "until_decided", 40, 0.1, 0.1,
    )  # fmt: skip
