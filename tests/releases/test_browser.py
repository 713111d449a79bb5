"""Playwright + Debian Chromium: a release manager goes leaderboard → report → decision and the
production alias moves; a researcher sees no decision form and is refused; the offline HTML
export opens with every network request blocked and asks for nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evalsite.releases.export import export_html
from evalsite.releases.services.leaderboard import leaderboard_refresh
from evalsite.releases.services.reports import release_report_build, release_report_create
from models.models import PRODUCTION, Alias
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, login
from tests.evals.factories import user_with
from tests.releases.builders import build_release_world

pytestmark = [pytest.mark.browser, pytest.mark.no_services]


def _world() -> Any:
    world = build_release_world(loss=None)
    report = release_report_create(candidate=world.candidate.model_version,
                                   baseline=world.baseline.model_version,
                                   dataset_versions=[world.version], enqueue=False)  # fmt: skip
    report = release_report_build(report_id=report.pk)
    leaderboard_refresh()
    return world, report


def test_manager_decides_from_the_leaderboard_and_production_moves_researcher_cannot(
    transactional_db: Any, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM reads beside Playwright's loop
    world, report = _world()
    user_with("release_manager", "mgr")
    user_with("researcher", "res")
    SHOTS.mkdir(parents=True, exist_ok=True)
    family = world.candidate.model_version.family
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context().new_page()
            login(page, live_server.url, "mgr")
            assert page.is_visible("#leaderboard")  # the home page is the leaderboard
            assert "insufficient" in page.text_content("#newest-verdict")
            page.screenshot(path=str(SHOTS / "releases-leaderboard.png"), full_page=True)
            page.click(f"#newest-verdict a[href='/releases/reports/{report.pk}/']")
            page.wait_for_load_state("networkidle")
            assert page.text_content("#gates tr[data-gate='fairness: skin tone'] .badge") == "pass"
            page.select_option("select[name=decision]", "approve")
            page.fill("textarea[name=reason]", "better for every skin-tone group")
            page.check("input[name=move_production]")
            page.click("#decide-form button[type=submit]")
            page.wait_for_load_state("networkidle")
            assert "production moved" in page.text_content(".messages")
            assert "better for every skin-tone group" in page.text_content("#decisions")
            page.screenshot(path=str(SHOTS / "releases-report-decided.png"), full_page=True)
            alias = Alias.objects.get(family=family, name=PRODUCTION)
            assert alias.version_id == world.candidate.model_version_id

            res = browser.new_context().new_page()
            login(res, live_server.url, "res")
            res.goto(f"{live_server.url}/releases/reports/{report.pk}/")
            assert res.query_selector("#decide-form") is None
            assert "Only release managers and admins" in res.text_content("#decide-denied")
            status = res.evaluate(
                """async (url) => {
                    const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken='));
                    const body = new URLSearchParams({decision: 'reject', reason: 'no',
                        csrfmiddlewaretoken: token ? token.split('=')[1] : ''});
                    const r = await fetch(url, {method: 'POST', body, credentials: 'same-origin',
                        headers: {'X-CSRFToken': token ? token.split('=')[1] : ''}});
                    return [r.status, await r.text()];
                }""",
                f"{live_server.url}/releases/reports/{report.pk}/decide/",
            )  # fmt: skip
            assert status[0] == 403 and "Only release managers and admins" in status[1]
        finally:
            browser.close()


def test_offline_export_opens_without_any_network_request(
    transactional_db: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    _, report = _world()
    path = tmp_path / "report.html"
    path.write_text(export_html(report), encoding="utf-8")
    requested: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()

            def block(route: Any) -> None:
                url = route.request.url
                if not url.startswith(("file://", "data:")):
                    requested.append(url)
                    route.abort()
                else:
                    route.continue_()

            page.route("**/*", block)
            page.goto(path.as_uri())
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 2")
            assert "IoU non-inferiority" in page.text_content("#gates")
        finally:
            browser.close()
    assert requested == []
