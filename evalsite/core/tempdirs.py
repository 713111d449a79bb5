"""Scratch folders under settings.TEMP_ROOT, and messages that never show where they are.

Why a root of our own: a test (or an operator) checking that an import left nothing behind looks
at one folder the site owns, not at the system temp folder that every other program shares.
Why scrubbing: a library's error text often quotes the file it failed on; inside an extraction
folder that is a server path (`/tmp/import-k2j…/files/a.png`) a user must not see, and the
useful part is the name inside the archive (`a.png`).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from django.conf import settings


def temp_folder(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A TemporaryDirectory under TEMP_ROOT (created if missing), removed when closed."""
    root = Path(settings.TEMP_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=prefix, dir=root)


def scrub_paths(text: str, *folders: Path | str) -> str:
    """`text` without server paths: a path under one of `folders` is cut to its part inside
    (`pred/a.png`), any other path under TEMP_ROOT to its file name; the folder itself is `…`.

    Both the given and the resolved spelling are cut (macOS's /tmp is /private/tmp).
    """
    for roots, keep in ((_spellings(folders), _inside), (_spellings([settings.TEMP_ROOT]), _name)):
        for root in roots:
            text = re.sub(re.escape(root) + r"(?:/([^\s'\"]*))?(?![^\s'\"])", keep, text)
    return text


def _spellings(folders: object) -> list[str]:
    found = set()
    for folder in folders:  # type: ignore[attr-defined]
        for spelling in (str(folder), str(Path(folder).resolve())):
            if spelling.rstrip("/"):
                found.add(spelling.rstrip("/"))
    return sorted(found, key=len, reverse=True)  # the longest first: a nested root wins


def _inside(match: re.Match[str]) -> str:
    return match.group(1) or "…"


def _name(match: re.Match[str]) -> str:
    return (match.group(1) or "").rstrip("/").rsplit("/", 1)[-1] or "…"
