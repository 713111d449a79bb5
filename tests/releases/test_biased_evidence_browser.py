"""Playwright + Debian Chromium: a researcher sees the biased-evidence warning, in words, on the
run page, the compare page and the release report of a set a version was selected on."""

from __future__ import annotations

from typing import Any

import pytest

from evalsite.releases.services.reports import release_report_build, release_report_create
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, login
from tests.evals.factories import tiny_spec, user_with
from tests.releases.builders import build_release_world

pytestmark = [pytest.mark.browser, pytest.mark.no_services]

SENTENCE = "14 of 30 items were used to select subject-lift 1.1.0 (selected)"


def test_the_warning_names_items_and_role_on_run_compare_and_report_pages(
    transactional_db: Any, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM reads beside Playwright's loop
    world = build_release_world(n=30, loss=None)
    cand = world.candidate.model_version
    cand.spec = {
        **tiny_spec(),
        "training": {"selected_image_sha256": [it.image_sha256 for it in world.items[:14]]},
    }
    cand.save(update_fields=["spec"])
    report = release_report_create(
        candidate=cand, baseline=world.baseline.model_version, dataset_versions=[world.version],
        enqueue=False,
    )  # fmt: skip
    report = release_report_build(report_id=report.pk)
    user_with("researcher", "res")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context().new_page()
            login(page, live_server.url, "res")
            page.goto(f"{live_server.url}{world.candidate.get_absolute_url()}")
            assert page.is_visible("#biased-evidence")
            assert SENTENCE in page.text_content("#biased-evidence")
            page.screenshot(path=str(SHOTS / "biased-evidence-run.png"), full_page=True)

            page.goto(f"{live_server.url}{world.baseline.get_absolute_url()}")
            assert page.query_selector("#biased-evidence") is None  # 1.0.0 declares nothing

            page.goto(
                f"{live_server.url}/runs/compare/?a={world.baseline.pk}&b={world.candidate.pk}"
            )
            assert SENTENCE in page.text_content("#biased-evidence")

            page.goto(f"{live_server.url}/releases/reports/{report.pk}/")
            assert SENTENCE in page.text_content("#biased-evidence")
            iou = page.text_content("#gates tr[data-gate='IoU non-inferiority']")
            assert "insufficient" in iou and "biased evidence: " + SENTENCE in iou
            assert "insufficient" in page.text_content(
                "#gates tr[data-gate='unbiased evidence'] .badge"
            )
            page.screenshot(path=str(SHOTS / "biased-evidence-report.png"), full_page=True)
        finally:
            browser.close()
