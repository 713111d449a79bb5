"""Where a test's stored files go."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def media_root(tmp_path: Path, settings: Any) -> Path:
    """Point MEDIA_ROOT at a new folder in the test's own `tmp_path` and return it."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root
