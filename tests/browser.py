"""What every Playwright test shares: Debian's Chromium, its flags, the screenshot folder, login.

Use: `browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)` and
`login(page, live_server.url, "username")` (demo and test users have password `pw-<username>`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"


def login(page: Any, base: str, username: str) -> None:
    """Sign in through the login form and wait for the landing page."""
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-" + username)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "SHOTS", "login"]
