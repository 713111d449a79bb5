"""Instance-lift campaigns: one selected ground-truth instance, the two runs' matched lifts side
by side, blind, with the keys, leases, gold and agreement of whole-image campaigns."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from evalsite.evals.models import ItemResult
from ratings.models import Assignment, Campaign, Mode, Rating, Stratum, Task
from ratings.services.assign import assignment_queue, rating_submit
from ratings.services.campaigns import CampaignError
from ratings.services.reports import campaign_snapshot_refresh
from ratings.services.simulated import simulated_rater_ensure, simulated_votes_seed
from tests.evals.factories import signed_in_client
from tests.ratings.blind import forbidden, leaks
from tests.ratings.builders import World, build_world, open_campaign
from tests.ratings.instance_world import build_instance_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.fixture
def iworld(db: Any, tmp_path: Path) -> World:
    return build_instance_world(tmp_path)


def _open(world: World, **kw: Any) -> Campaign:
    args = {"name": "Which lift of the selected person?", "mode": Mode.INSTANCES,
            "items_per_pair": 6, "gold_ratio": 0.15, **kw}  # fmt: skip
    return open_campaign(world, **args)


def test_tasks_select_one_instance_and_carry_each_runs_matched_lift(iworld: World) -> None:
    campaign = _open(iworld)
    tasks = list(campaign.tasks.select_related("item"))
    assert tasks and all(t.instance is not None for t in tasks)
    for t in tasks:
        ra = ItemResult.objects.get(run=t.run_a_id, item=t.item_id).instance_scores
        rb = ItemResult.objects.get(run=t.run_b_id, item=t.item_id).instance_scores
        pa = {p["gt"]: p for p in ra["pairs"]}
        pb = {p["gt"]: p for p in rb["pairs"]}
        assert t.instance_a == (pa[t.instance]["pred"] if t.instance in pa else None)
        assert t.instance_b == (pb[t.instance]["pred"] if t.instance in pb else None)
        assert t.iou_a == pytest.approx(pa[t.instance]["iou"] if t.instance in pa else 0.0)
        assert t.iou_b == pytest.approx(pb[t.instance]["iou"] if t.instance in pb else 0.0)
        assert t.divergence == pytest.approx(abs(t.iou_a - t.iou_b))
    gold = [t for t in tasks if t.stratum == Stratum.GOLD]
    # run b misses the last person of every item: those are gross failures, a is right
    assert gold and all(t.gold_winner == "a" and t.instance_b is None for t in gold)
    assert campaign.tasks.exclude(stratum=Stratum.GOLD).count() == 6


def test_a_set_without_instance_masks_is_refused_and_nothing_is_written(
    db: Any, tmp_path: Path
) -> None:
    world = build_world(tmp_path)
    with pytest.raises(CampaignError, match="has no instance masks"):
        _open(world)
    assert not Campaign.objects.exists() and not Task.objects.exists()


def test_the_form_creates_an_instance_campaign_through_the_same_service(iworld: World) -> None:
    c = signed_in_client(iworld.researcher)
    resp = c.post(reverse("ratings:create"), {
        "name": "Instances via the form", "dataset_version": iworld.version.pk,
        "runs": [r.pk for r in iworld.runs], "mode": "instances", "overlap": 3,
        "items_per_pair": 4, "disagreement_share": 0.5, "gold_ratio": 0.1, "alpha": 0.05,
        "stopping": "fixed", "lease_minutes": 10, "open_now": "on",
    })  # fmt: skip
    assert resp.status_code in (302, 303), resp.content.decode()[:2000]
    campaign = Campaign.objects.get(name="Instances via the form")
    assert campaign.mode == Mode.INSTANCES
    assert campaign.tasks.filter(instance__isnull=False).exists()


def test_the_rating_page_shows_the_selected_subject_and_both_lifts_blind(iworld: World) -> None:
    campaign = _open(iworld)
    ann = iworld.annotators[0]
    c = signed_in_client(ann)
    leased = c.post(reverse("ratings:lease"))
    assert leased.status_code == 200
    state = leased.json()
    words = forbidden(iworld)
    assert state["mode"] == "instances" and leaks(leased.content.decode(), words) == []
    page = c.get(reverse("ratings:next")).content.decode()
    assert 'id="tap"' in page and "outlined subject" in page and leaks(page, words) == []
    for entry in state["queue"]:
        a = Assignment.objects.select_related("task").get(token=entry["token"])
        t = a.task
        missed = {"left": (t.instance_a if a.left_is_a else t.instance_b) is None,
                  "right": (t.instance_b if a.left_is_a else t.instance_a) is None}  # fmt: skip
        assert entry["empty"] == missed
        assert set(entry["images"]) == {"photo", "thumb", "tap", "left", "right"}
        for slot, url in entry["images"].items():
            resp = c.get(url)
            headers = " ".join(f"{k}: {v}" for k, v in resp.items())
            assert leaks(url, words) == [] and leaks(headers, words) == []
            assert resp.status_code == 200 and "Content-Disposition" not in resp
            img = Image.open(io.BytesIO(resp.content))
            if missed.get(slot):  # an empty cutout; the page says "no subject shown" over it
                assert img.mode == "RGBA" and img.getextrema()[3] == (0, 0)
                continue
            assert not img.info.get("exif") and not getattr(img, "text", {})
            if slot == "tap":
                assert resp["Content-Type"] == "image/jpeg"
                assert img.size == Image.open(t.item.web.path).size
            if slot in ("left", "right"):
                assert img.mode == "RGBA"
    # the highlighted photo keeps the selected person and dims the rest
    a = Assignment.objects.select_related("task__item").get(token=state["current"]["token"])
    tap = np.asarray(Image.open(io.BytesIO(c.get(state["current"]["images"]["tap"]).content)))
    photo = np.asarray(Image.open(a.task.item.web.path).convert("RGB")).astype(float)
    assert tap.astype(float).mean() < photo.mean()
    # keys: a choice maps to run identity as in whole-image campaigns
    token = state["current"]["token"]
    nxt = c.post(reverse("ratings:submit"), json.dumps({"token": token, "choice": "left"}),
                 content_type="application/json")  # fmt: skip
    assert nxt.status_code == 200
    rating = Rating.objects.get(assignment__token=token)
    assert rating.outcome == ("a" if a.left_is_a else "b")
    assert campaign.pk == rating.campaign_id


def test_leases_gold_and_agreement_work_as_for_whole_images(iworld: World) -> None:
    campaign = _open(iworld, overlap=3)
    raters = [simulated_rater_ensure(username=f"sim-{i}") for i in range(3)]
    seeded = simulated_votes_seed(campaign=campaign, scripted=raters)
    assert seeded.added == 3 * campaign.tasks.count()
    # a fourth rater finds every task full (k = 3): leases respect overlap
    assert assignment_queue(user=iworld.annotators[0], campaign=campaign).assignments == []
    payload = campaign_snapshot_refresh(campaign=campaign, rounds=200).payload
    assert payload["campaign"]["mode"] == "instances"
    assert payload["qc"]["gold_tasks"] == campaign.tasks.filter(stratum=Stratum.GOLD).count()
    assert payload["agreement"]["units"] > 0
    assert payload["scores"]["all"] is not None
    # scripted raters prefer the lift closer to the selected person: run a (exact) wins
    votes = payload["pair_votes"][0]
    assert votes["a_wins"] > votes["b_wins"]
    rows = payload["metric_agreement"]["table"]
    assert {r["metric"] for r in rows} == {"instance_iou", "instance_boundary_iou"}


def test_a_closed_instance_campaign_refuses_votes(iworld: World) -> None:
    campaign = _open(iworld)
    ann = iworld.annotators[0]
    a = assignment_queue(user=ann).assignments[0]
    Campaign.objects.filter(pk=campaign.pk).update(status="closed")
    from ratings.services.assign import CampaignClosed

    with pytest.raises(CampaignClosed):
        rating_submit(user=ann, token=a.token, choice="left")


def test_the_demo_step_opens_an_instance_campaign_whose_page_ranks_the_metrics(
    db: Any, tmp_path: Path
) -> None:
    from models.models import CANDIDATE, Alias
    from ratings import demo

    world = build_instance_world(tmp_path, name=demo.INSTANCE_SET)
    candidate = world.runs[1].model_version
    Alias.objects.create(family=candidate.family, name=CANDIDATE, version=candidate)
    lines: list[str] = []
    demo.after_start(lines.append)
    campaign = Campaign.objects.get(mode=Mode.INSTANCES)
    assert campaign.tasks.filter(stratum=Stratum.GOLD).exists()
    raters = len(demo.SCRIPTED_RATERS) + len(demo.RANDOM_CLICKERS)
    assert Rating.objects.filter(campaign=campaign).count() == raters * campaign.tasks.count()
    assert any("instance-lift campaign #" in line for line in lines)
    assert any("which metric predicts people: instance" in line for line in lines), lines
    demo.after_start(lines.append)  # idempotent
    assert Campaign.objects.filter(mode=Mode.INSTANCES).count() == 1
    c = signed_in_client(world.researcher)
    page = c.get(reverse("ratings:campaign", args=[campaign.pk])).content.decode()
    assert 'id="metric-agreement"' in page and "instance IoU" in page


def test_racing_annotators_on_instance_tasks_never_exceed_k(
    transactional_db: Any, tmp_path: Path
) -> None:
    """Eight annotators lease at once (threads released together, own connections): the
    instance tasks are claimed by the same conditional UPDATE / SKIP LOCKED path, never over k."""
    from evalsite.core.services import user_ensure
    from tests.threads import run_in_threads

    world = build_instance_world(tmp_path, annotators=1)
    campaign = _open(world, items_per_pair=4, gold_ratio=0.0, overlap=2)
    users = [user_ensure(username=f"iracer{i}", password="pw", roles=["annotator"])
             for i in range(8)]  # fmt: skip
    assert run_in_threads(lambda u: assignment_queue(user=u), users, together=True,
                          timeout=120) == []  # fmt: skip
    for user in users:  # a claimer that met only locked rows gets its share now
        assignment_queue(user=user)
    tasks = list(campaign.tasks.all())
    assert all(t.assignments.count() == 2 for t in tasks)
    assert Assignment.objects.count() == 2 * len(tasks)
    pairs = list(Assignment.objects.values_list("task", "annotator"))
    assert len(set(pairs)) == len(pairs)
