"""Playwright + Debian Chromium: a researcher presses "Compute intervals" on the compare page,
sees "computing…", and after the worker's job the paired intervals with n and whether each
excludes 0; the latency table names the 30-image tail "max"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evalsite.evals.models import EvalRun, RunComparison
from pipelines.stats.latency import latency_summary
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, login
from tests.evals.comparisons import run_compare_jobs
from tests.evals.factories import user_with
from tests.releases.builders import build_release_world

pytestmark = [pytest.mark.browser, pytest.mark.no_services]


def test_researcher_computes_and_reads_paired_intervals(
    transactional_db: Any,
    live_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM reads beside Playwright's loop
    world = build_release_world(n=30)
    totals = [10.0 + k for k in range(28)] + [80.0, 90.0]
    for k, run in enumerate((world.baseline, world.candidate)):
        rows = [{"device": "cpu", "total": t} for t in totals]
        EvalRun.objects.filter(pk=run.pk).update(
            output_digest=f"{k + 1:064d}",
            summary={**run.summary, "latency": latency_summary(rows, warmups=0)},
        )
    user_with("researcher", "res")
    a, b = world.baseline.pk, world.candidate.pk
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, live_server.url, "res")
        page.goto(f"{live_server.url}/runs/compare/?a={a}&b={b}")
        latency = page.locator("#compare-latency").inner_text()
        assert "max" in latency and "30" in latency and "p99" not in latency.split("Tail")[0]
        page.click("#compute-intervals")
        page.wait_for_load_state("networkidle")
        assert "computing…" in page.locator("#intervals").inner_text()
        assert RunComparison.objects.get().status == "queued"
        run_compare_jobs(django_capture_on_commit_callbacks)  # the worker's part
        page.reload()
        table = page.locator("#intervals-table")
        iou = table.locator('tr[data-metric="iou"]').inner_text()
        assert "yes — B better" in iou and "30" in iou
        page.screenshot(path=str(SHOTS / "compare-intervals.png"), full_page=True)
        browser.close()
    assert errors == []
