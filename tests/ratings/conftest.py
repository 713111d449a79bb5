"""Fixtures of the rating tests: a private MEDIA_ROOT per test and a ready-made world."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.evals import conftest as evals_conftest
from tests.media import media_root
from tests.ratings.builders import World, build_world


@pytest.fixture(autouse=True)
def media(tmp_path: Path, settings: Any) -> Path:
    return media_root(tmp_path, settings)


@pytest.fixture
def world(db: Any, tmp_path: Path) -> World:
    return build_world(tmp_path)


# The eval tests' fake model session and inline chunk runner, for campaigns over real runs.
fake_model = evals_conftest.fake_model
run_inline = evals_conftest.run_inline
