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
from tests.releases.builders import build_release_world, world_report

pytestmark = [pytest.mark.browser, pytest.mark.no_services]


def _world() -> Any:
    world = build_release_world(loss=None)
    report = world_report(world, enqueue=False)
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
            assert "approving needs an override" in page.text_content("#override-needed")
            page.fill("textarea[name=override]", "crowd study runs after the release")
            page.click("#decide-form button[type=submit]")
            page.wait_for_load_state("networkidle")
            assert "production moved" in page.text_content(".messages")
            assert "better for every skin-tone group" in page.text_content("#decision")
            assert page.query_selector("#decide-form") is None
            page.screenshot(path=str(SHOTS / "releases-report-decided.png"), full_page=True)
            alias = Alias.objects.get(family=family, name=PRODUCTION)
            assert alias.version_id == world.candidate.model_version_id

            res = browser.new_context().new_page()
            login(res, live_server.url, "res")
            res.goto(f"{live_server.url}/releases/reports/{report.pk}/")
            assert res.query_selector("#decide-form") is None
            assert "crowd study runs after the release" in res.text_content("#decision-override")
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


def test_manager_is_refused_on_stale_and_non_production_reports_and_one_of_two_approvals_wins(
    transactional_db: Any, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import sync_playwright

    from evalsite.releases.models import ReleaseDecision, ReleaseReport
    from tests.releases.builders import newer_run

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM reads beside Playwright's loop
    world, stale = _world()
    newer_run(world, "baseline")  # the stale report read the older baseline run
    fresh = release_report_build(report_id=release_report_create(
        candidate=world.candidate.model_version, baseline=world.baseline.model_version,
        dataset_versions=[world.version], enqueue=False).pk)  # fmt: skip
    family = world.candidate.model_version.family
    user_with("release_manager", "mgr")
    SHOTS.mkdir(parents=True, exist_ok=True)

    def approve(page: Any, report_id: int, override: str) -> None:
        page.goto(f"{live_server.url}/releases/reports/{report_id}/")
        page.select_option("select[name=decision]", "approve")
        page.fill("textarea[name=reason]", "ship it")
        page.check("input[name=move_production]")
        page.fill("textarea[name=override]", override)
        page.click("#decide-form button[type=submit]")
        page.wait_for_load_state("networkidle")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context().new_page()
            login(page, live_server.url, "mgr")
            # A stale report: refused with what moved and what to do
            page.goto(f"{live_server.url}/releases/reports/{stale.pk}/")
            assert "has a newer run" in page.text_content("#report-stale")
            approve(page, stale.pk, "hotfix")
            refusal = page.text_content("#decide-form .errorlist")
            assert "is stale" in refusal and "Rebuild" in refusal
            page.screenshot(path=str(SHOTS / "releases-refused-stale.png"), full_page=True)

            # A report whose baseline is no longer what production points to
            other = world.candidate.model_version
            Alias.objects.filter(family=family, name=PRODUCTION).update(version=other)
            approve(page, fresh.pk, "hotfix")
            refusal = page.text_content("#decide-form .errorlist")
            assert f"production points to {other.ref} now" in refusal
            Alias.objects.filter(family=family, name=PRODUCTION).update(
                version=world.baseline.model_version
            )
            assert not ReleaseDecision.objects.exists()

            # Two approvals sent at the same moment: one decision, the other told why
            page.goto(f"{live_server.url}/releases/reports/{fresh.pk}/")
            statuses = page.evaluate(
                """async (url) => {
                    const form = document.querySelector('#decide-form');
                    const token = form.querySelector('[name=csrfmiddlewaretoken]').value;
                    const send = () => fetch(url, {method: 'POST', credentials: 'same-origin',
                        body: new URLSearchParams({decision: 'approve', reason: 'ship it',
                            move_production: 'on', override: 'votes after release',
                            csrfmiddlewaretoken: token}), redirect: 'manual'});
                    const rs = await Promise.all([send(), send()]);
                    const moved = (r) => r.type === 'opaqueredirect';
                    return await Promise.all(rs.map(
                        async (r) => [moved(r) ? 302 : r.status, moved(r) ? '' : await r.text()]));
                }""",
                f"{live_server.url}/releases/reports/{fresh.pk}/decide/",
            )  # fmt: skip
            codes = sorted(s[0] for s in statuses)
            assert codes == [302, 409], codes
            assert "already has its decision" in next(s[1] for s in statuses if s[0] == 409)
            assert ReleaseDecision.objects.filter(report=fresh).count() == 1
            assert Alias.objects.get(family=family, name=PRODUCTION).version_id == other.pk

            # The decision replaces the form; the override is on the banner and in the history
            page.goto(f"{live_server.url}/releases/reports/{fresh.pk}/")
            assert page.query_selector("#decide-form") is None
            assert "votes after release" in page.text_content("#decision-override")
            page.goto(f"{live_server.url}/")
            assert "Approve" in page.text_content("#newest-decision")
            assert "votes after release" in page.text_content("#newest-override")
            page.screenshot(path=str(SHOTS / "releases-banner-override.png"), full_page=True)
            page.goto(f"{live_server.url}/releases/history/")
            assert "votes after release" in page.text_content("#history")

            # The stale report offers a rebuild: a new report over the same sets
            page.goto(f"{live_server.url}/releases/reports/{stale.pk}/")
            page.click("#rebuild")
            page.wait_for_load_state("networkidle")
            rebuilt = ReleaseReport.objects.order_by("-pk").first()
            assert rebuilt is not None and rebuilt.pk not in (stale.pk, fresh.pk)
            assert page.url.endswith(f"/releases/reports/{rebuilt.pk}/")
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
