"""Fixtures of the fairness tests: a private MEDIA_ROOT per test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.media import media_root


@pytest.fixture(autouse=True)
def media(tmp_path: Path, settings: Any) -> Path:
    return media_root(tmp_path, settings)
