"""Production settings: `check --deploy` is clean in docker-compose's profile, and every page
(plotly charts and the rating page included) runs under the Content-Security-Policy without a
single violation in the browser console."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import Client

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip


def compose_env() -> dict[str, str]:
    """The web service's environment in docker-compose.yml: `${VAR:-default}` → default, and a
    variable the operator must set (`${VAR:?why}`) → a stand-in value."""
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = {}
    for key, value in doc["x-app-env"].items():
        text = str(value)
        text = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)
        text = re.sub(r"\$\{[A-Z0-9_]+:\?[^}]*\}", "operator-set-value", text)
        assert "${" not in text, f"{key}: {text} is not a form this reader knows"
        env[key] = text
    return env


@pytest.mark.no_services
def test_check_deploy_is_clean_in_the_docker_compose_production_profile(tmp_path: Path) -> None:
    env = compose_env()
    assert env["DEBUG"] == "false"
    env.update(
        SECRET_KEY="a-long-random-production-secret-key-for-the-check-0123456789abcdef",
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",  # no postgres host here
        CELERY_BROKER_URL="filesystem://",
        MEDIA_ROOT=str(tmp_path / "media"),
        VAR_DIR=str(tmp_path / "var"),
        PATH=os.environ["PATH"],
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


@pytest.mark.django_db
@pytest.mark.no_services
def test_pages_carry_a_strict_script_policy() -> None:
    response = Client().get("/login/")
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["script-src"] == "'self'", "no inline scripts, no eval"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


def watch(page: Any, violations: list[str]) -> None:
    """Collect CSP reports and script errors of `page` into `violations`."""

    def console(message: Any) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            violations.append(f"{page.url}: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: violations.append(f"{page.url}: {error}"))


def _pages(world: Any, campaign_pk: int) -> list[str]:
    run = world.runs[0]
    mv = run.model_version
    item = world.version.items.order_by("pk").first()
    return [
        "/",
        "/sets/",
        f"/sets/{world.version.dataset.name}/",
        f"/sets/{world.version.dataset.name}/{world.version.short_hash}/",
        "/sets/upload/",
        "/models/",
        f"/models/{mv.family.name}/",
        f"/models/{mv.family.name}/{mv.version}/",
        "/models/upload/",
        "/models/tokens/",
        "/runs/",
        "/runs/start/",
        f"/runs/{run.pk}/",
        f"/runs/{run.pk}/items/",
        f"/runs/{run.pk}/items/{item.pk}/",
        f"/runs/compare/?a={world.runs[0].pk}&b={world.runs[1].pk}",
        "/rate/campaigns/",
        "/rate/campaigns/new/",
        f"/rate/campaigns/{campaign_pk}/",
        "/system/",
        "/api/docs/",
    ]


@pytest.mark.browser
@pytest.mark.no_services
def test_main_pages_and_the_rating_page_have_no_csp_violation(
    transactional_db: Any, live_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:  # fmt: skip
    from playwright.sync_api import sync_playwright

    from evalsite.evals.models import EvalRun
    from ratings.services.campaigns import campaign_create
    from tests.evals.factories import user_with
    from tests.ratings.builders import build_world

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.MEDIA_ROOT = tmp_path / "media"
    world = build_world(tmp_path, n=6, annotators=1)
    ramp = [i / 255 for i in range(256)]
    curves = {"precision": ramp[::-1], "recall": ramp, "fmeasure": ramp}
    EvalRun.objects.filter(pk__in=[r.pk for r in world.runs]).update(
        curves=curves, summary={"metrics": {"iou": 0.5}, "ungated_metrics": {"iou": 0.5}}
    )
    user_with("admin", "boss")
    campaign = campaign_create(
        name="CSP", dataset_version=world.version, runs=world.runs, items_per_pair=4,
        open_now=True,
    )  # fmt: skip
    violations: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            for username, pages in (
                ("boss", _pages(world, campaign.pk)),
                (world.annotators[0].username, ["/rate/"]),
            ):
                context = browser.new_context()
                page = context.new_page()
                watch(page, violations)
                page.goto(f"{live_server.url}/login/")
                page.fill("input[name=username]", username)
                page.fill("input[name=password]", "pw-" + username)
                page.click("button[type=submit]")
                page.wait_for_load_state("networkidle")
                for url in pages:
                    response = page.goto(f"{live_server.url}{url}")
                    assert response is not None and response.status < 400, url
                    page.wait_for_load_state("networkidle")
                if username != "boss":
                    assert page.is_visible("#rate")
                    page.keyboard.press("1")  # rate once: the submit fetch runs under the CSP
                    page.wait_for_function(
                        "() => !document.getElementById('rate').classList.contains('busy')"
                    )
                else:
                    page.goto(f"{live_server.url}/runs/{world.runs[0].pk}/")
                    page.wait_for_load_state("networkidle")
                    if not page.query_selector("#pr-chart .main-svg"):
                        violations.append("plotly did not draw the PR chart")
                    page.goto(f"{live_server.url}/api/docs/")
                    try:  # Swagger UI drew the operations it read from /api/schema/
                        page.wait_for_selector(".swagger-ui .opblock", timeout=15000)
                    except Exception:
                        violations.append("Swagger UI did not draw the API's operations")
                context.close()
        finally:
            browser.close()
    assert violations == [], "\n".join(violations)
