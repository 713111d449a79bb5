"""Rating at an expert's speed over a slow link: nothing a rater does is lost.

Chromium's own network emulation adds 600 ms to every request (saves, leases, images). An
annotator presses 30 choice keys 300 ms apart, faster than any save can answer: every key
rates the task that was on screen when it was pressed, and all 30 are stored. Then a reload
with votes still waiting in the outbox loses none of them. Also: the annotator's /rate/ lists
an open attribute-labelling campaign beside the rating one, and a key pressed just after a task
appears is refused with a visible flash, not silently.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from ratings.models import Rating
from ratings.services.attributes import attribute_campaign_create
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, login
from tests.ratings.builders import build_world, open_campaign
from tests.ratings.test_browser import playwright

pytestmark = [pytest.mark.browser, pytest.mark.no_services]

KEYS = {"1": "left", "2": "right", "3": "tie", "4": "both_bad"}
LATENCY_MS = 600
# A rater looks at a task before judging it. Longer than the page's double-press guard (150 ms),
# so no key here is taken for a double press: a task that arrives from a lease just before a key
# would otherwise, rightly, ignore that key while the test counted it as a rating.
LOOK_MS = 200


def _token(page: Any) -> str:
    return str(page.get_attribute("#rate", "data-token") or "")


def _pending(page: Any) -> int:
    return int(page.get_attribute("#rate", "data-pending") or 0)


def _press_rated(page: Any, pressed: list[tuple[str, str]], rng: random.Random) -> None:
    """Look at the task on screen, then press a random choice key, recording that task."""
    key = rng.choice(sorted(KEYS))
    page.wait_for_function("() => document.getElementById('rate').dataset.token")
    token = _token(page)
    page.wait_for_timeout(LOOK_MS)
    assert _token(page) == token, "the task on screen changed without a key"
    page.keyboard.press(key)
    pressed.append((token, KEYS[key]))


def _assert_stored(annotator: Any, pressed: list[tuple[str, str]]) -> None:
    stored = {
        r.assignment.token: r.shown_choice
        for r in Rating.objects.filter(annotator=annotator).select_related("assignment")
    }
    assert len(pressed) == len({t for t, _ in pressed})  # no task rated twice on screen
    assert stored == dict(pressed)


def test_thirty_keys_on_a_slow_link_store_thirty_ratings_and_a_reload_loses_none(
    transactional_db: Any, live_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM reads beside Playwright's loop
    world = build_world(tmp_path, n=44, annotators=1)
    ann = world.annotators[0]
    open_campaign(world, name="Fast raters", items_per_pair=44, gold_ratio=0.1)
    attribute_campaign_create(name="Label people", dataset_version=world.version, open_now=True)
    rng = random.Random(7)
    pressed: list[tuple[str, str]] = []
    with playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        login(page, live_server.url, ann.username)
        # One inbox: the attribute campaign is listed on /rate/ beside the rating one.
        inbox = page.locator("#inbox")
        assert "Label people in photos" in inbox.inner_text()
        assert "Compare two cutouts" in inbox.inner_text()
        assert "/rate/attributes/" in str(
            inbox.locator("[data-mode=attributes]").get_attribute("href")
        )
        page.wait_for_function("() => document.getElementById('rate').dataset.token")

        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": LATENCY_MS, "downloadThroughput": -1,
             "uploadThroughput": -1},
        )  # fmt: skip

        # A key at once after a task appears is an accidental double press: refused, visibly.
        page.wait_for_timeout(300)
        _press_rated(page, pressed, rng)
        page.keyboard.press("1")
        assert page.is_visible("#flash") and "ignored" in page.inner_text("#flash")
        page.wait_for_timeout(300)

        for _ in range(29):
            _press_rated(page, pressed, rng)
            page.wait_for_timeout(300 - LOOK_MS)
        assert _pending(page) > 0  # the keys ran ahead of the saves
        page.screenshot(path=str(SHOTS / "rating-outbox-saving.png"))
        page.wait_for_function("() => document.getElementById('rate').dataset.pending === '0'")
        assert "saved" in page.inner_text("#saving")
        _assert_stored(ann, pressed)
        assert len(pressed) == 30

        # Three more keys, then a reload before their saves can have answered.
        for _ in range(3):
            _press_rated(page, pressed, rng)
            page.wait_for_timeout(200)
        assert _pending(page) > 0
        page.reload()
        page.wait_for_function("() => document.getElementById('rate').dataset.pending === '0'")
        page.wait_for_load_state("networkidle")
        on_screen = _token(page)
        browser.close()

    _assert_stored(ann, pressed)
    assert Rating.objects.filter(annotator=ann).count() == 33
    assert on_screen not in {t for t, _ in pressed}  # a rated task never comes back on screen


def test_votes_wait_while_offline_and_rating_pauses_until_they_are_saved(
    transactional_db: Any, live_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline, the outbox cannot drain: the page says so, hands out no new task (a key there is
    refused with a flash), and saves everything once the link is back."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    world = build_world(tmp_path, n=12, annotators=1)
    ann = world.annotators[0]
    open_campaign(world, name="Offline", items_per_pair=12)
    pressed: list[tuple[str, str]] = []
    with playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        page = context.new_page()
        login(page, live_server.url, ann.username)
        page.wait_for_function("() => document.getElementById('rate').dataset.token")
        page.wait_for_timeout(300)
        context.set_offline(True)
        _press_rated(page, pressed, random.Random(1))
        page.wait_for_function("() => document.querySelector('#saving.stalled') !== null")
        assert "not saved" in page.inner_text("#saving")
        assert page.is_hidden("#panes") and page.is_visible("#waiting")
        assert _token(page) == ""
        page.keyboard.press("2")
        assert "Paused" in page.inner_text("#flash")
        assert Rating.objects.filter(annotator=ann).count() == 0
        context.set_offline(False)
        page.wait_for_function("() => document.getElementById('rate').dataset.pending === '0'")
        page.wait_for_function("() => document.getElementById('rate').dataset.token")
        assert page.is_visible("#panes")
        browser.close()
    _assert_stored(ann, pressed)
