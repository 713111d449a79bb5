"""Pages through the Django test client: the annotator's page is blind; campaign pages for
researchers show progress, QC, agreement and scores; exports; role checks."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.urls import reverse
from PIL import Image

from ratings.models import Campaign, CampaignStatus, Rating
from ratings.selectors import campaign_snapshot_get
from ratings.services.assign import assignment_queue, rating_submit
from ratings.services.campaigns import campaign_set_exclusion
from ratings.services.reports import campaign_snapshot_refresh
from tests.evals.factories import signed_in_client
from tests.ratings.blind import forbidden, leaks
from tests.ratings.builders import World, open_campaign

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def _open(world: World, **kw: Any) -> Campaign:
    args = {"name": "Hair edges", "items_per_pair": 6, "gold_ratio": 0.15, **kw}
    return open_campaign(world, **args)


def test_the_rating_page_and_its_json_and_images_are_blind(world: World) -> None:
    _open(world)
    ann = world.annotators[0]
    c = signed_in_client(ann)
    page = c.get(reverse("ratings:next"))
    html = page.content.decode()
    assert page.status_code == 200 and 'id="rate-state"' in html
    assert "0 of" in html
    assert leaks(html, forbidden(world)) == []
    leased = c.post(reverse("ratings:lease"))
    assert leased.status_code == 200
    assert leaks(leased.content.decode(), forbidden(world)) == []
    state = c.get(reverse("ratings:state")).json()
    assert state == leased.json()  # the GET shows what the POST leased
    assert leaks(json.dumps(state), forbidden(world)) == []
    page = c.get(reverse("ratings:next")).content.decode()
    assert state["current"]["images"]["left"] in page and leaks(page, forbidden(world)) == []
    for url in state["current"]["images"].values():
        resp = c.get(url)
        assert resp.status_code == 200
        assert "Content-Disposition" not in resp
        assert leaks(" ".join(f"{k}: {v}" for k, v in resp.items()), forbidden(world)) == []
        img = Image.open(io.BytesIO(resp.content))
        assert not img.info.get("exif") and not getattr(img, "text", {})
    # Submit + next in one round trip.
    token = state["current"]["token"]
    nxt = c.post(
        reverse("ratings:submit"),
        json.dumps({"token": token, "choice": "left", "reasons": ["edges"], "seconds": 2.5}),
        content_type="application/json",
    )
    assert nxt.status_code == 200
    assert nxt.json()["current"]["token"] == state["upcoming"]["token"]
    assert nxt.json()["progress"]["done"] == 1
    assert leaks(nxt.content.decode(), forbidden(world)) == []


def test_tokens_of_others_and_unknown_slots_are_404(world: World) -> None:
    _open(world)
    mine, other = world.annotators[:2]
    queue = assignment_queue(user=mine).assignments
    c = signed_in_client(other)
    assert c.get(reverse("ratings:image", args=[queue[0].token, "left"])).status_code == 404
    own = signed_in_client(mine)
    assert own.get(reverse("ratings:image", args=[queue[0].token, "alpha"])).status_code == 404
    bad = c.post(
        reverse("ratings:submit"),
        json.dumps({"token": queue[0].token, "choice": "left"}),
        content_type="application/json",
    )
    assert bad.status_code == 404
    assert not Rating.objects.exists()


def test_without_tasks_the_annotator_is_told_so(world: World) -> None:
    page = signed_in_client(world.annotators[0]).get(reverse("ratings:next"))
    assert "No rating tasks are waiting" in page.content.decode()


def test_roles_keep_annotators_out_of_campaign_pages_and_researchers_out_of_rating(
    world: World,
) -> None:
    campaign = _open(world)
    ann = signed_in_client(world.annotators[0])
    for name, args in [
        ("ratings:campaigns", []),
        ("ratings:campaign", [campaign.pk]),
        ("ratings:export", [campaign.pk, "csv"]),
        ("ratings:create", []),
    ]:
        assert ann.get(reverse(name, args=args)).status_code == 403
    res = signed_in_client(world.researcher)
    assert res.get(reverse("ratings:next")).status_code == 403


def _rate_everything(world: World, choice_for: Any) -> None:
    for ann in world.annotators:
        while True:
            queue = assignment_queue(user=ann).assignments
            if not queue:
                break
            a = queue[0]
            rating_submit(
                user=ann, token=a.token, choice=choice_for(a), reasons=["edges"], seconds=3.0
            )


def test_campaign_page_shows_progress_agreement_qc_and_scores(world: World, settings: Any) -> None:
    settings.RATINGS_MIN_PAIR_VOTES = 1
    campaign = _open(world)
    # Everybody prefers run 0 (the truth) whatever side it is on.
    _rate_everything(world, lambda a: "left" if a.left_is_a else "right")
    res = signed_in_client(world.researcher)
    before = res.get(reverse("ratings:campaign", args=[campaign.pk])).content.decode()
    assert "Recompute now" in before and "Krippendorff" not in before  # not computed yet
    assert res.post(reverse("ratings:recompute", args=[campaign.pk])).status_code == 302
    page = res.get(reverse("ratings:campaign", args=[campaign.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    n = Rating.objects.count()
    assert f"ago from {n} ratings" in html
    assert "insufficient gold" in html
    assert "Krippendorff" in html and "Fleiss" in html
    assert "Control (uniform sample" in html and "Disagreement-first" in html
    assert "subject-lift 1.0.0 [production] · run #" in html
    assert "edges: " in html
    report = campaign_snapshot_get(campaign=campaign).payload  # type: ignore[union-attr]
    assert report["agreement"]["alpha"] in (None, 1.0)  # unanimous (α undefined if one value)
    strengths = {s["run"]: s["estimate"] for s in report["scores"]["all"]["strengths"]}
    prod, cand = (strengths[n] for n in report["runs"])
    assert prod == 0.0 and cand < 0.0
    assert report["progress"]["ratings"] == n == report["computed_from"]["ratings"]
    votes = report["pair_votes"][0]
    assert votes["a_wins"] == votes["total"] == report["scores"]["all"]["votes"]
    assert report["both_bad_rate"]["all"] == 0.0 and report["top_reasons"][0][0] == "edges"
    vs_ref = report["scores"]["all"]["vs_reference"][0]
    assert vs_ref["run_id"] == world.runs[1].pk and vs_ref["win"]["estimate"] == 0.0


def test_too_few_votes_show_no_strength_and_say_how_many(world: World, settings: Any) -> None:
    settings.RATINGS_MIN_PAIR_VOTES = 500
    campaign = _open(world)
    _rate_everything(world, lambda a: "left")
    snap = campaign_snapshot_refresh(campaign=campaign, rounds=20)
    bt = snap.payload["scores"]["all"]
    cand = bt["strengths"][1]
    assert cand["enough"] is False and cand["estimate"] is None and cand["low"] is None
    assert bt["pairs"][0]["win"] == {"estimate": None, "low": None, "high": None}
    html = signed_in_client(world.researcher).get(reverse("ratings:campaign", args=[campaign.pk]))
    assert f"not enough votes ({cand['votes']} of 500)" in html.content.decode()


def test_exports_have_one_row_per_rating_with_run_identity(world: World) -> None:
    campaign = _open(world)
    _rate_everything(world, lambda a: "tie")
    res = signed_in_client(world.researcher)
    text = res.get(reverse("ratings:export", args=[campaign.pk, "csv"])).content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == Rating.objects.count() > 0
    assert all(r["outcome"] == "tie" and r["run_a"].startswith("subject-lift") for r in rows)
    body = json.loads(res.get(reverse("ratings:export", args=[campaign.pk, "json"])).content)
    assert body["report"] is None and len(body["ratings"]) == len(rows)  # not computed yet
    campaign_snapshot_refresh(campaign=campaign, rounds=20)
    body = json.loads(res.get(reverse("ratings:export", args=[campaign.pk, "json"])).content)
    assert body["report"]["campaign"]["id"] == campaign.pk and len(body["ratings"]) == len(rows)
    assert (
        body["report"]["snapshot"]["ratings"] == len(rows)
        and not body["report"]["snapshot"]["dirty"]
    )


def test_researcher_creates_opens_and_toggles_a_campaign(world: World) -> None:
    res = signed_in_client(world.researcher)
    resp = res.post(
        reverse("ratings:create"),
        {
            "name": "From the form",
            "dataset_version": world.version.pk,
            "runs": [r.pk for r in world.runs],
            "mode": "pairwise",
            "overlap": 3,
            "items_per_pair": 4,
            "disagreement_share": 0.5,
            "gold_ratio": 0.1,
            "instructions": "",
        },
    )
    campaign = Campaign.objects.get(name="From the form")
    assert resp.status_code == 302 and campaign.status == CampaignStatus.DRAFT
    res.post(reverse("ratings:status", args=[campaign.pk]), {"action": "open"})
    res.post(reverse("ratings:status", args=[campaign.pk]), {"action": "include"})
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.OPEN and not campaign.exclude_flagged
    bad = res.post(
        reverse("ratings:create"),
        {
            "name": "one run",
            "dataset_version": world.version.pk,
            "runs": [world.runs[0].pk],
            "mode": "pairwise",
            "overlap": 3,
            "items_per_pair": 4,
            "disagreement_share": 0.5,
            "gold_ratio": 0.1,
        },
    )
    assert bad.status_code == 400 and "two or more" in bad.content.decode()


def test_a_gold_failing_annotator_is_flagged_and_the_switch_shows_the_effect(
    db: Any, tmp_path: Any
) -> None:
    from tests.ratings.builders import build_world

    world = build_world(tmp_path, n=24, annotators=3, name="qc-set")
    campaign = _open(world, items_per_pair=12, gold_ratio=0.15, overlap=3)
    Campaign.objects.filter(pk=campaign.pk).update(min_gold=2)
    clicker = world.annotators[2]

    def choice(a: Any) -> str:
        truth_left = a.left_is_a  # run a (the truth) is better on every item here
        honest = "left" if truth_left else "right"
        if a.annotator_id != clicker.pk:
            return honest
        return "right" if honest == "left" else "left"  # always the wrong side

    _rate_everything(world, choice)
    campaign.refresh_from_db()
    report = campaign_snapshot_refresh(campaign=campaign, rounds=50).payload
    assert report["qc"]["flagged"] == [clicker.username]
    assert report["qc"]["excluded"] == [clicker.username] and report["excluded_ratings"] > 0
    flagged_row = next(r for r in report["qc"]["annotators"] if r["annotator"] == clicker.username)
    assert flagged_row["gold_accuracy"] == 0.0 and flagged_row["dawid_skene"] is not None
    campaign_set_exclusion(campaign=campaign, exclude_flagged=False)
    assert campaign_snapshot_get(campaign=campaign).dirty  # type: ignore[union-attr]
    included = campaign_snapshot_refresh(campaign=campaign, rounds=50).payload
    assert included["qc"]["excluded"] == []
    assert included["scores"]["all"]["votes"] > report["scores"]["all"]["votes"]
    assert report["scores_other_setting"] == included["scores"]["all"]
    campaign_set_exclusion(campaign=campaign, exclude_flagged=True)
    campaign_snapshot_refresh(campaign=campaign, rounds=50)
    html = signed_in_client(world.researcher).get(reverse("ratings:campaign", args=[campaign.pk]))
    assert "flagged" in html.content.decode() and "show with them" in html.content.decode()


def test_absolute_mode_shows_one_cutout_takes_scores_and_reports_means(world: World) -> None:
    campaign = _open(world, mode="absolute", items_per_pair=3)
    c = signed_in_client(world.annotators[0])
    page = c.get(reverse("ratings:next")).content.decode()
    assert 'data-slot="single"' in page and 'data-slot="left"' not in page
    state = c.post(reverse("ratings:lease")).json()
    assert set(state["current"]["images"]) == {"photo", "thumb", "single"}
    assert c.get(state["current"]["images"]["single"]).status_code == 200
    bad = c.post(
        reverse("ratings:submit"),
        json.dumps({"token": state["current"]["token"], "choice": "left"}),
        content_type="application/json",
    )
    assert bad.status_code == 400 and "score" in bad.json()["error"]["message"]
    ok = c.post(
        reverse("ratings:submit"),
        json.dumps({"token": state["current"]["token"], "score": 4}),
        content_type="application/json",
    )
    assert ok.status_code == 200 and ok.json()["progress"]["done"] == 1
    campaign_snapshot_refresh(campaign=campaign, rounds=50)
    html = signed_in_client(world.researcher).get(reverse("ratings:campaign", args=[campaign.pk]))
    assert "Mean scores (1–5)" in html.content.decode()
