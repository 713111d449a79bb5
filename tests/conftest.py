"""Markers that skip only when their resource is absent, and CI's no-skip rule.

* `services`: PostgreSQL + Redis (DATABASE_URL / CELERY_BROKER_URL set to them)
* `shared_data`: ../shared/data beside the project
* `browser`: Debian chromium at /usr/bin/chromium

In CI's full run (CI=true with both services set) any skipped test fails the session: a skip
there means a resource that should exist is missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
CHROMIUM = Path("/usr/bin/chromium")


def services_configured() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get(
        "CELERY_BROKER_URL", ""
    ).startswith("redis")


def ci_full_run() -> bool:
    return os.environ.get("CI", "").lower() == "true" and services_configured()


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    reasons = {
        "services": (
            services_configured(),
            "needs DATABASE_URL=postgres://… and CELERY_BROKER_URL=redis://…",
        ),
        "shared_data": (SHARED_DATA.is_dir(), f"needs {SHARED_DATA}"),
        "browser": (CHROMIUM.exists(), f"needs {CHROMIUM} (apt-get install chromium)"),
    }
    for item in items:
        for marker, (present, why) in reasons.items():
            if marker in item.keywords and not present:
                item.add_marker(pytest.mark.skip(reason=why))


_skipped: list[str] = []


def pytest_runtest_logreport(report: Any) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    from django.conf import settings

    test_dir = getattr(settings, "TEST_DIR", None)
    if test_dir is not None and os.environ.get("TEST_RUN_ID") == str(os.getpid()):
        import shutil

        shutil.rmtree(test_dir, ignore_errors=True)
    if ci_full_run() and _skipped:
        print(f"\nCI full run: {len(_skipped)} test(s) were skipped, which is a failure here:")
        for nodeid in _skipped:
            print(f"  {nodeid}")
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def _role_groups(request: Any) -> None:
    """Role groups come from a data migration, which a transactional test's flush deletes."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = marker.kwargs.get("transaction", False)
    request.getfixturevalue("transactional_db" if transactional else "db")
    from evalsite.core.roles import ensure_role_groups

    ensure_role_groups()


@pytest.fixture(autouse=True)
def _fresh_media(request: Any) -> Any:
    """A database test's stored files go with its rows. Flushing or rolling back the test
    database resets its id sequences, so the next test's run 1 would otherwise find the last
    test's run-1 files (on a real database ids are never reused)."""
    yield
    uses_db = {"db", "transactional_db", "live_server"} & set(request.fixturenames)
    if request.node.get_closest_marker("django_db") is None and not uses_db:
        return
    import shutil

    from django.conf import settings

    media = Path(settings.MEDIA_ROOT)
    if media.is_dir():
        for child in media.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


@pytest.fixture
def shared_data() -> Path:
    return SHARED_DATA


pytest_plugins = ["tests.workers", "tests.support.s3server"]
