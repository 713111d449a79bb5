"""Playwright + Debian Chromium against a live server: a researcher opens a run's Fairness tab and
sees the forest plots and the flags in words; an annotator labels people with the keyboard only.
Screenshots go to var/screenshots/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evalsite.fairness.services import fairness_report_compute
from ratings.models import Rating
from ratings.services.attributes import attribute_campaign_create
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, login
from tests.evals.factories import user_with
from tests.fairness.builders import build_set, build_world

pytestmark = [pytest.mark.browser, pytest.mark.no_services]


def test_researcher_sees_forest_plots_and_flags_and_annotator_labels_with_the_keyboard(
    transactional_db: Any,
    live_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM reads beside Playwright's loop
    world = build_world(degrade=0.2, source="synthetic")
    run = world.runs[0]
    fairness_report_compute(run=run)
    version, _ = build_set(n=6, negatives=1, attributes=False)
    attribute_campaign_create(
        name="label people",
        dataset_version=version,
        overlap=1,
        open_now=True,
        instructions="Label the main person.",
    )
    annotator = user_with("annotator", "ann-attr")
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        page = ctx.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on(
            "response",
            lambda r: (
                errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and "favicon" not in r.url
                else None
            ),
        )
        login(page, live_server.url, "res")
        page.goto(f"{live_server.url}{run.get_absolute_url()}")
        page.click("#fairness-tab")
        page.wait_for_load_state("networkidle")
        assert "Fairness" in str(page.text_content("h1"))
        assert "synthetic labels" in str(page.text_content("h1"))
        # One plotly forest plot per metric, drawn from the stored report.
        page.wait_for_selector("#forest-iou .main-svg")
        assert page.locator(".forest .main-svg").count() >= 6
        assert page.locator("#forest-iou .point").count() >= 10  # a dot per group
        flags = str(page.text_content("#fairness-flags"))
        assert "Monk 8-10: IoU 0." in flags and "below the other images" in flags
        assert page.locator("#fairness-flags .strip img").count() >= 1
        page.screenshot(path=str(SHOTS / "fairness-tab.png"), full_page=True)
        page.click("#fairness-flags .strip a >> nth=0")  # the worst image opens the item view
        page.wait_for_load_state("networkidle")
        assert f"/runs/{run.pk}/items/" in page.url

        # The annotator labels every photo with the keyboard only.
        actx = browser.new_context(viewport={"width": 1280, "height": 800})
        apage = actx.new_page()
        apage.on("pageerror", lambda exc: errors.append(str(exc)))
        login(apage, live_server.url, annotator.username)
        apage.goto(f"{live_server.url}/rate/attributes/")
        apage.wait_for_function("() => document.getElementById('attr').dataset.token")  # leased
        apage.wait_for_function("() => document.getElementById('attr-img').complete")
        assert str(apage.text_content("#attr-progress")).startswith("0 of 7")
        apage.screenshot(path=str(SHOTS / "attribute-labelling.png"))
        for step, keys in enumerate(
            (
                ["8", "w", "Enter"],
                ["0", "m", "Enter"],
                ["n"],
                ["u", "g", "Enter"],
                ["3", "o", "Enter"],
                ["5", "w", "Enter"],
                ["1", "m", "Enter"],
            )
        ):
            before = str(apage.text_content("#attr-progress"))
            for key in keys[:-1]:
                apage.keyboard.press(key)
            if keys[-1] == "Enter":
                assert (
                    apage.get_attribute("[data-tone].swatch, [data-tone]", "aria-checked")
                    is not None
                )
            apage.keyboard.press(keys[-1])
            if step < 6:
                apage.wait_for_function(
                    "b => document.getElementById('attr-progress').textContent !== b", arg=before
                )
        apage.wait_for_selector("#attr-done", state="visible")
        browser.close()

    labels = sorted(
        (r.skin_tone, r.perceived_gender) for r in Rating.objects.filter(annotator=annotator)
    )
    assert labels == sorted(
        [
            ("8", "woman"),
            ("10", "man"),
            ("not_applicable", "not_applicable"),
            ("unknown", "unknown"),
            ("3", "other"),
            ("5", "woman"),
            ("1", "man"),
        ]
    )
    assert not errors, errors  # no script error, no missing image or script
