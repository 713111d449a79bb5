"""Instance lifts in a real browser: the annotator sees the photo with one person outlined and
the two lifts of that person, rates with the same keys, and nothing names a model or a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ratings.models import Mode, Rating
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, login
from tests.ratings.blind import forbidden, leaks
from tests.ratings.builders import open_campaign
from tests.ratings.instance_world import build_instance_world
from tests.ratings.test_browser import _progress, _rate_key, playwright

pytestmark = [pytest.mark.browser, pytest.mark.no_services]


def test_annotator_rates_instance_lifts_with_the_keyboard_blind(
    transactional_db: Any, live_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM reads beside Playwright's loop
    world = build_instance_world(tmp_path, annotators=1)
    open_campaign(world, name="Instance lifts", mode=Mode.INSTANCES)
    words = forbidden(world)
    seen: list[str] = []

    def record(response: Any) -> None:
        seen.append(response.url + " " + " ".join(f"{k}: {v}" for k, v in response.headers.items()))
        if response.headers.get("content-type", "").startswith(("text/", "application/json")):
            try:
                seen.append(response.text())
            except Exception:  # a redirect has no body to read
                pass

    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.on("response", record)
        login(page, live_server.url, "ann0")
        page.wait_for_function("() => document.getElementById('rate').dataset.token")
        tap_shown = "() => { const t = document.getElementById('tap'); return t.naturalWidth > 0; }"
        page.wait_for_function(tap_shown)
        assert "outlined subject" in str(page.text_content(".tapfig figcaption"))
        assert _progress(page).startswith("0 of 4")
        first_tap = page.get_attribute("#tap", "src")
        page.screenshot(path=str(SHOTS / "rate-instances.png"))
        _rate_key(page, "1")
        assert page.get_attribute("#tap", "src") != first_tap  # the next task's selected person
        _rate_key(page, "3")
        assert _progress(page).startswith("2 of 4")
        browser.close()
    outcomes = sorted(Rating.objects.values_list("shown_choice", flat=True))
    assert outcomes == ["left", "tie"]
    for text in seen:
        assert leaks(text, words) == [], leaks(text, words)
