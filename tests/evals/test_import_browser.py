"""Playwright + Debian Chromium: a researcher imports a zip through the real page (XHR upload with
progress, the registry's upload.js), first a bad archive (every problem shown, the chosen file
kept), then a good one (redirected to the queued imported run's page)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from evalsite.evals.models import EvalRun, RunSource
from tests.evals.factories import tiny_set, tiny_spec, user_with, version_row
from tests.evals.importing import write_predictions, zip_folder

pytestmark = [pytest.mark.browser, pytest.mark.no_services]

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip


def test_researcher_imports_a_zip_through_the_page(
    transactional_db: Any, live_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM reads beside Playwright's loop
    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    dv = tiny_set(tmp_path, n=3, empty=0)
    user_with("researcher", "res")
    folder = write_predictions(dv, tmp_path / "pred")
    good = tmp_path / "good.zip"
    good.write_bytes(zip_folder(folder))
    bad = tmp_path / "bad.zip"
    bad.write_bytes(zip_folder(folder, extra={"../evil.png": b"x"}))
    base = live_server.url

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page()
        page.goto(f"{base}/login/")
        page.fill("input[name=username]", "res")
        page.fill("input[name=password]", "pw-res")
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        page.goto(f"{base}/runs/")
        page.click("#import-link")
        page.select_option("select[name=model_version]", str(version.pk))
        page.select_option("select[name=dataset_version]", str(dv.pk))
        page.fill("input[name=device]", "iPhone 15 Pro")

        page.set_input_files("input[name=file]", str(bad))
        page.click("#upload-form button[type=submit]")
        page.wait_for_selector("#upload-errors li")
        errors = page.text_content("#upload-errors") or ""
        assert "Nothing was imported" in errors and "path leaves the archive" in errors
        assert EvalRun.objects.count() == 0

        page.set_input_files("input[name=file]", str(good))
        page.click("#upload-form button[type=submit]")
        page.wait_for_url(re.compile(r".*/runs/\d+/$"))
        text = page.text_content("body") or ""
        browser.close()
    run = EvalRun.objects.get()
    assert run.source == RunSource.IMPORTED and run.device == "iPhone 15 Pro"
    assert "predictions imported, not run here" in text and "iPhone 15 Pro" in text
