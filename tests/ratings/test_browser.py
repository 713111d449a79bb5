"""Playwright + Debian Chromium against a real server process (pytest-django's live server).

An annotator logs in (the page's GET leases nothing; its script POSTs for the first tasks), rates
with the keyboard only, zooms, switches backgrounds, reloads in the middle and resumes the same
task; every HTML/JSON response and header is scanned for model identity; a manager then sees the
scores change. Without script, the "Start rating" button leases by POST and redirects back.
Screenshots go to var/screenshots/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from ratings.models import Assignment, Rating
from ratings.services.reports import campaign_snapshot_refresh
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, login
from tests.evals.factories import user_with
from tests.ratings.blind import forbidden, leaks
from tests.ratings.builders import build_world, open_campaign

pytestmark = [pytest.mark.browser, pytest.mark.no_services]


@contextmanager
def playwright() -> Iterator[Any]:
    """sync_playwright, closing the database connection the ORM opens inside it: code there runs
    in Playwright's greenlet, which has a connection of its own (asgiref locals) that the test
    database teardown would otherwise find still open on PostgreSQL."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        try:
            yield pw
        finally:
            connection.close()


def _progress(page: Any) -> str:
    return str(page.text_content("#progress"))


def _rate_key(page: Any, key: str) -> None:
    """Press a choice key as a person would (not within the double-press guard of the task
    appearing) and wait until the vote is saved."""
    before = _progress(page)
    page.wait_for_timeout(200)
    page.keyboard.press(key)
    page.wait_for_function("b => document.getElementById('progress').textContent !== b", arg=before)
    page.wait_for_function("() => document.getElementById('rate').dataset.pending === '0'")


def _scores_text(page: Any) -> str:
    return str(page.text_content(".scores[data-stratum=all]"))


def test_annotator_rates_with_the_keyboard_blind_and_manager_sees_scores_change(
    transactional_db: Any,
    live_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM reads beside Playwright's loop
    settings.RATINGS_MIN_PAIR_VOTES = 1  # a handful of votes: show the numbers anyway
    world = build_world(tmp_path, n=10, annotators=1)
    user_with("release_manager", "mgr")
    campaign = open_campaign(world, name="Browser campaign", items_per_pair=8, gold_ratio=0.15,
                             instructions="Pick the cleaner lift.")  # fmt: skip
    words = forbidden(world)
    seen: list[tuple[str, str]] = []
    posts: list[str] = []
    SHOTS.mkdir(parents=True, exist_ok=True)

    def record(response: Any) -> None:
        headers = " ".join(f"{k}: {v}" for k, v in response.headers.items())
        seen.append((response.url, headers))
        ctype = response.headers.get("content-type", "")
        if ctype.startswith(("text/", "application/json")):
            try:
                seen.append((response.url, response.text()))
            except Exception:  # a redirect has no body to read
                pass

    with playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ann = browser.new_context(viewport={"width": 1280, "height": 800})
        page = ann.new_page()
        page.on("response", record)
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        login(page, live_server.url, "ann0")
        assert page.url.rstrip("/").endswith("/rate")  # an annotator lands in their next task
        page.wait_for_function("() => document.getElementById('rate').dataset.token")  # leased
        page.wait_for_function("() => document.querySelector('.pane .cut').complete")
        assert _progress(page).startswith("0 of")
        assert page.is_hidden("#start")  # the script leased: no button to press
        first_token = page.get_attribute("#rate", "data-token")
        # The GET leased nothing; a first lease POST brought two tasks (the first shows sooner)
        # and a second the rest the script holds (eight: it rates ahead of its saves).
        page.wait_for_load_state("networkidle")
        lease = f"{live_server.url}/rate/api/lease"
        assert [u for u in posts if "/rate/" in u] == [lease, lease]
        held = Assignment.objects.filter(annotator=world.annotators[0])
        assert held.count() == 8 and held.first().token == first_token  # type: ignore[union-attr]

        # Zoom with the keyboard, then the wheel; both panes move together; dblclick resets.
        page.keyboard.press("z")
        assert page.get_attribute("#rate", "data-zoom") == "2"
        page.mouse.move(400, 400)
        page.mouse.wheel(0, -200)
        page.wait_for_function("Number(document.getElementById('rate').dataset.zoom) > 2")
        transforms = page.eval_on_selector_all(".view", "els => els.map(e => e.style.transform)")
        assert len(set(transforms)) == 1 and "scale(2.5)" in transforms[0]
        page.keyboard.press("b")
        page.keyboard.press("b")
        page.keyboard.press("b")  # dimmed photo behind the cutouts
        assert page.get_attribute("#rate", "data-bg") == "photo"
        page.screenshot(path=str(SHOTS / "rating-zoomed-photo-bg.png"))
        page.dblclick(".pane[data-slot=left] .stage")
        assert page.get_attribute("#rate", "data-zoom") == "1"
        page.keyboard.press("b")
        page.keyboard.press("?")
        assert page.is_visible("#help")
        page.screenshot(path=str(SHOTS / "rating-help.png"))
        page.keyboard.press("?")

        # Rate with the keyboard only: a reason, then choices.
        page.keyboard.press("r")
        page.keyboard.press("e")
        assert page.is_checked("#reasons input[value=edges]")
        _rate_key(page, "1")
        assert page.get_attribute("#rate", "data-token") != first_token
        for key in ("2", "3"):
            _rate_key(page, key)
        assert _progress(page).startswith("3 of")
        page.screenshot(path=str(SHOTS / "rating-page.png"))

        # Reload mid-campaign: same task, same progress, no lease (enough tasks are held).
        token = page.get_attribute("#rate", "data-token")
        before_reload = len(posts)
        page.reload()
        page.wait_for_load_state("networkidle")
        assert page.get_attribute("#rate", "data-token") == token
        assert _progress(page).startswith("3 of")
        assert posts[before_reload:] == []

        # A manager looks at the scores, the annotator rates on, the scores change.
        mgr = browser.new_context()
        mpage = mgr.new_page()
        login(mpage, live_server.url, "mgr")
        mpage.goto(f"{live_server.url}/rate/campaigns/{campaign.pk}/")
        mpage.click("#snapshot button")  # "Recompute now" (no worker runs in this test)
        mpage.wait_for_load_state("networkidle")
        assert "ago from 3 ratings" in str(mpage.text_content("#snapshot"))
        before = _scores_text(mpage)
        assert "Bradley" in before
        for _ in range(4):
            _rate_key(page, "1")
        mpage.reload()
        assert _scores_text(mpage) == before  # pages read the stored report, never compute
        mpage.click("#snapshot button")
        mpage.wait_for_load_state("networkidle")
        assert "ago from 7 ratings" in str(mpage.text_content("#snapshot"))
        after = _scores_text(mpage)
        assert after != before
        mpage.screenshot(path=str(SHOTS / "campaign-page.png"), full_page=True)

        page.reload()
        page.wait_for_load_state("networkidle")
        html = page.content()
        browser.close()

    assert Rating.objects.filter(annotator=world.annotators[0]).count() == 7
    assert Rating.objects.get(annotator=world.annotators[0], reasons=["edges"])
    report = campaign_snapshot_refresh(campaign=campaign, rounds=50).payload
    assert report["scores"]["all"]["votes"] > 0
    # Blindness: the HTML and every response (bodies of text/JSON, all headers, all URLs).
    assert leaks(html, words) == []
    annotator_responses = [(u, t) for u, t in seen if "/login/" not in u]
    assert annotator_responses
    for url, text in annotator_responses:
        assert leaks(url, words) == [], url
        assert leaks(text, words) == [], (url, leaks(text, words))
    (SHOTS / "blind-scan.json").write_text(
        json.dumps({"responses": len(seen), "forbidden_words": len(words)}, indent=1)
    )


def test_without_script_start_rating_leases_by_post_and_redirects_back(
    transactional_db: Any, live_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No-JS flow (absolute mode): the GET shows a "Start rating" form; pressing it POSTs (CSRF
    token in the form), leases two tasks and lands on the GET page again (303), which renders the
    held task's images; reloading re-posts nothing. Then, with script, the keys rate it."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    world = build_world(tmp_path, n=6, annotators=1)
    open_campaign(world, name="No script", mode="absolute")
    ann = world.annotators[0]
    with playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(java_script_enabled=False).new_page()
        login(page, live_server.url, ann.username)
        assert page.url.rstrip("/").endswith("/rate")
        assert page.is_visible("#start button") and not Assignment.objects.exists()
        assert page.get_attribute(".pane[data-slot=single] .cut", "src") is None
        with page.expect_navigation():
            page.click("#start button")
        assert page.url.rstrip("/").endswith("/rate")
        held = list(Assignment.objects.filter(annotator=ann))
        assert len(held) == 2
        src = str(page.get_attribute(".pane[data-slot=single] .cut", "src"))
        assert f"/rate/i/{held[0].token}/single" in src
        assert page.locator("#start").count() == 0
        page.reload()
        assert Assignment.objects.filter(annotator=ann).count() == 2
        page.screenshot(path=str(SHOTS / "rating-no-script.png"))

        scripted = browser.new_context().new_page()
        posts: list[str] = []
        scripted.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        login(scripted, live_server.url, ann.username)
        assert scripted.get_attribute("#rate", "data-token") == held[0].token
        # Holding the form's two tasks, the script shows the first and tops up to its own depth
        # with one lease (it rates ahead of its saves).
        scripted.wait_for_function("() => document.getElementById('rate').dataset.pending === '0'")
        scripted.wait_for_load_state("networkidle")
        assert posts == [f"{live_server.url}/login/", f"{live_server.url}/rate/api/lease"]
        _rate_key(scripted, "4")
        assert scripted.get_attribute("#rate", "data-token") == held[1].token
        browser.close()
    rating = Rating.objects.get(annotator=ann)
    assert rating.score == 4 and rating.assignment_id == held[0].pk
