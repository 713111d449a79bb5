"""The campaign snapshot's "which metric predicts people" section and the page that shows it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from django.db.models import F
from django.test import Client
from django.urls import reverse

from evalsite.evals.models import ItemResult
from pipelines.stats.metric_agreement import codes_pack, codes_unpack
from ratings.models import Campaign, CampaignSnapshot, Rating, Stratum
from ratings.selectors import campaign_snapshot_get
from ratings.services.assign import assignment_queue, rating_submit
from ratings.services.metric_agreement import family_metric_agreement
from ratings.services.reports import campaign_snapshot_refresh
from tests.ratings.builders import World, build_world, open_campaign

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def _vote_all(campaign: Campaign, world: World, answer: Any) -> None:
    """Every annotator rates every task; `answer(task)` gives 'a', 'b', 'tie' or 'both_bad'."""
    for user in world.annotators:
        while True:
            queue = assignment_queue(user=user, campaign=campaign).assignments
            if not queue:
                break
            for a in queue:
                choice = answer(a.task, user)
                if choice in ("a", "b"):
                    choice = "left" if (choice == "a") == a.left_is_a else "right"
                rating_submit(user=user, token=a.token, choice=choice)


@pytest.fixture
def big_world(db: Any, tmp_path: Any) -> World:
    return build_world(tmp_path, n=12, runs=2, annotators=3)


def test_the_snapshot_ranks_metrics_by_agreement_and_matches_a_per_vote_reference(
    big_world: World,
) -> None:
    world = big_world
    # a second metric that people follow: MAE, made to favour run b on every item
    for r in ItemResult.objects.all():
        r.mae = 0.01 if r.run_id == world.runs[1].pk else 0.2
        r.save(update_fields=["mae"])
    campaign = open_campaign(world, name="who predicts", items_per_pair=10)
    _vote_all(campaign, world, lambda task, user: "b" if user != world.annotators[2] else "tie")
    snapshot = campaign_snapshot_refresh(campaign=campaign, rounds=300)
    section = snapshot.payload["metric_agreement"]
    table = {r["metric"]: r for r in section["table"]}
    assert section["best"] == "mae" and section["table"][0]["rank"] == 1
    # reference: one task at a time from the stored ratings
    decided, credit = 0, []
    for task in campaign.tasks.exclude(stratum=Stratum.GOLD):
        outs = list(Rating.objects.filter(task=task).values_list("outcome", flat=True))
        a, b = outs.count("a"), outs.count("b")
        if a == b:
            continue
        decided += 1
        ia = ItemResult.objects.get(run=task.run_a, item=task.item).iou
        ib = ItemResult.objects.get(run=task.run_b, item=task.item).iou
        credit.append(0.5 if ia == ib else float((ia > ib) == (a > b)))
    assert section["decided"] == decided == table["iou"]["n"]
    assert table["iou"]["share"] == pytest.approx(np.mean(credit))
    assert table["mae"]["share"] == 1.0
    # metrics with no stored value abstain everywhere: exactly a coin
    assert table["sad"]["share"] == 0.5 and table["sad"]["abstain"] == decided
    # the per-task codes live in their own column, not in the report the page parses
    assert "codes" not in section
    codes = codes_unpack(snapshot.agreement_codes)
    assert len(codes["iou"]) == decided and set(codes["mae"].tolist()) == {2}
    assert share(codes["iou"]) == pytest.approx(table["iou"]["share"])
    # the best metric never disagrees with people here: its gallery is empty
    assert section["gallery"] == []


def test_the_campaign_page_shows_the_table_and_the_disagreement_gallery(
    big_world: World,
) -> None:
    world = big_world
    campaign = open_campaign(world, name="page", items_per_pair=10)
    # people follow IoU except on one item, where all three strongly prefer IoU's loser
    contrarian = campaign.tasks.exclude(iou_a=F("iou_b")).order_by("pk").first()
    assert contrarian is not None

    def answer(task: Any, user: Any) -> str:
        better = "a" if (task.iou_a or 0) > (task.iou_b or 0) else "b"
        if task.iou_a == task.iou_b:
            return "tie"
        if task.pk == contrarian.pk:
            return "b" if better == "a" else "a"
        return better

    _vote_all(campaign, world, answer)
    campaign_snapshot_refresh(campaign=campaign, rounds=300)
    c = Client()
    c.force_login(world.researcher)
    html = c.get(reverse("ratings:campaign", args=[campaign.pk])).content.decode()
    assert 'id="metric-agreement"' in html and "Which metric predicts people" in html
    assert "agreed with people on" in html
    assert 'id="metric-agreement-gallery"' in html and f'data-task="{contrarian.pk}"' in html
    snapshot = campaign.snapshot
    snapshot.refresh_from_db()
    (shown,) = snapshot.payload["metric_agreement"]["gallery"]
    assert shown["task"] == contrarian.pk and shown["people"] != shown["metric"]
    assert reverse("evals:file", args=[contrarian.run_a_id, contrarian.item_id, "web_cutout"]) \
        in html  # fmt: skip


def share(codes: Any) -> float:
    """A metric's agreement share from its codes (2 agree, 1 abstain, 0 disagree)."""
    return float(np.mean(codes) / 2)


def test_the_family_pools_the_stored_codes_and_the_page_never_loads_them(
    big_world: World,
) -> None:
    world = big_world
    campaign = open_campaign(world, name="pooled", items_per_pair=10)
    _vote_all(campaign, world, lambda task, user: "a")
    snapshot = campaign_snapshot_refresh(campaign=campaign, rounds=200)
    family = world.runs[0].model_version.family.name
    pooled = family_metric_agreement(family=family, rounds=200)["image"]
    assert pooled is not None and pooled.campaigns == (campaign.pk,)
    stored = codes_unpack(snapshot.agreement_codes)
    for row in pooled.table:
        assert row.share == pytest.approx(share(stored[row.metric]))

    # the campaign page's snapshot leaves the codes in the database
    page_snapshot = campaign_snapshot_get(campaign=campaign)
    assert page_snapshot is not None and "agreement_codes" in page_snapshot.get_deferred_fields()

    # a snapshot stored before the codes had their own column is pooled from its section
    doc = dict(snapshot.payload)
    doc["metric_agreement"] = {**doc["metric_agreement"],
                               "codes": {m: c.tolist() for m, c in stored.items()}}  # fmt: skip
    CampaignSnapshot.objects.filter(pk=snapshot.pk).update(payload=doc, agreement_codes=b"")
    legacy = family_metric_agreement(family=family, rounds=200)["image"]
    assert legacy is not None and legacy.table == pooled.table
    assert codes_unpack(codes_pack({})) == {} and codes_unpack(b"") == {}
