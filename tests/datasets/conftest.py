"""Fixtures of the dataset tests: an isolated MEDIA_ROOT per test, users per role."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User

from evalsite.datasets.models import Dataset, DatasetVersion, Item, ItemAttribute
from tests.media import media_root


@pytest.fixture(autouse=True)
def media(request: Any, tmp_path: Path, settings: Any) -> Path:
    """A private MEDIA_ROOT, except for real-worker tests (the worker reads settings_test's)."""
    if request.node.get_closest_marker("worker"):
        return Path(settings.MEDIA_ROOT)
    return media_root(tmp_path, settings)


def media_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def assert_nothing_written(root: Path) -> None:
    assert Dataset.objects.count() == 0
    assert DatasetVersion.objects.count() == 0
    assert Item.objects.count() == 0
    assert ItemAttribute.objects.count() == 0
    assert media_files(root) == []


def make_user(username: str, *roles: str, superuser: bool = False) -> User:
    user = User.objects.create_user(
        username, password="pw-for-tests", is_superuser=superuser, is_staff=superuser
    )
    user.groups.set(Group.objects.filter(name__in=roles))
    return user


@pytest.fixture
def researcher(db: Any) -> User:
    return make_user("res", "researcher")


@pytest.fixture
def annotator(db: Any) -> User:
    return make_user("ann", "annotator")
