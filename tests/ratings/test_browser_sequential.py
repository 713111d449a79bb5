"""Playwright: in an until-decided campaign, a decided pair's tasks stop coming, and the campaign
page shows the decision, the votes it took and the votes saved."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from evalsite.core.services import user_ensure
from ratings.models import Assignment
from ratings.services.assign import assignment_queue, rating_submit
from ratings.services.reports import campaign_snapshot_refresh
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, login
from tests.evals.factories import user_with
from tests.ratings.builders import build_world, open_campaign
from tests.ratings.test_browser import _progress, _rate_key, playwright

pytestmark = [pytest.mark.browser, pytest.mark.no_services]


def _seed_votes(campaign: Any, users: list[Any], production: int, challenger: int) -> None:
    """Production always beats the challenger; every other pair is a tie."""
    for user in users:
        while queue := assignment_queue(user=user, campaign=campaign).assignments:
            a = queue[0]
            pair = {a.task.run_a_id, a.task.run_b_id}
            if pair != {production, challenger}:
                choice = "tie"
            else:
                choice = "left" if (a.task.run_a_id == production) == a.left_is_a else "right"
            rating_submit(user=user, token=a.token, choice=choice)


def test_a_decided_pair_stops_coming_and_the_page_shows_decision_and_votes_saved(
    transactional_db: Any, live_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    world = build_world(tmp_path, n=8, runs=3, annotators=6)
    user_with("release_manager", "mgr")
    campaign = open_campaign(
        world,
        name="Until decided",
        items_per_pair=8,
        disagreement_share=0.0,
        overlap=4,
        stopping="until_decided",
    )
    production, challenger = world.runs[0].pk, world.runs[1].pk
    _seed_votes(campaign, world.annotators[:2], production, challenger)  # 16 of its 32
    pair = next(
        p
        for p in campaign_snapshot_refresh(campaign=campaign, rounds=20).payload["sequential"][
            "pairs"
        ]
        if (p["a_id"], p["b_id"]) == (production, challenger)
    )
    assert pair["decision"] == "baseline" and pair["saved"] > 0
    ann = user_ensure(username="browser-ann", password="pw-browser-ann", roles=["annotator"])
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        login(page, live_server.url, ann.username)
        page.wait_for_function("() => document.getElementById('rate').dataset.token")
        total = int(re.findall(r"of (\d+)", _progress(page))[0])
        for _ in range(total - 1):
            _rate_key(page, "3")
        page.wait_for_timeout(200)  # not within the double-press guard of the task appearing
        page.keyboard.press("3")  # the last one: no next task to show
        page.wait_for_function("() => document.getElementById('rate').dataset.pending === '0'")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)
        # Everything the annotator was handed belongs to the open pairs.
        mine = Assignment.objects.filter(annotator=ann).select_related("task")
        assert mine.count() == total > 0
        assert all({a.task.run_a_id, a.task.run_b_id} != {production, challenger} for a in mine)
        assert not assignment_queue(user=ann, campaign=campaign).assignments

        mgr = browser.new_context().new_page()
        login(mgr, live_server.url, "mgr")
        mgr.goto(f"{live_server.url}/rate/campaigns/{campaign.pk}/")
        mgr.click("#snapshot button")  # "Recompute now" (no worker runs in this test)
        mgr.wait_for_load_state("networkidle")
        row = mgr.locator("#sequential tr[data-decision=baseline]")
        assert row.count() == 1
        text = str(row.text_content())
        assert (
            "subject-lift 1.0.0 [production]" in text and "preferred — certain at α = 0.05" in text
        )
        assert f"after {pair['stopped_at']} votes" in text
        assert f"{pair['stopped_at']} to decide" in text
        saved = int(str(row.locator(".saved").text_content()).strip())
        assert saved == pair["saved"] > 0
        assert "no decision yet" in str(mgr.text_content("#sequential"))
        assert "decided" in str(mgr.text_content("#votes-saved"))
        assert "picks the left image" in str(mgr.text_content("#side-bias"))
        mgr.screenshot(path=str(SHOTS / "campaign-until-decided.png"), full_page=True)
        browser.close()
