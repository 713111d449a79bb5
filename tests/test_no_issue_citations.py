"""No comment cites a tracker issue by number: the tracker is not in the repository, so a comment
says the reason itself ("GrabCut drew from the RNG state earlier photos left"), not where it was
once discussed ("see issue N", "(#N)")."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_services

ROOT = Path(__file__).resolve().parent.parent
SUFFIXES = {".py", ".js", ".html", ".css", ".sh", ".cfg", ".toml", ".yml", ".yaml", ".conf"}
NAMES = {"Makefile", "Dockerfile", "run"}  # `run`: .ci/run
SKIP_DIRS = {".git", ".venv", "var", "node_modules", "__pycache__", "vendor", ".mypy_cache"}
SKIP_DIRS |= {".ruff_cache", ".pytest_cache"}

# "issue 17", "issues #3 and", "issue\n17" (a comment wrapped between the word and the number),
# "(#12)", "see #12", "fixes #12": a tracker reference. "#4242" after "run" (a run id in a
# message) and CSS colours ("#604134") are not.
CITATION = re.compile(
    r"\bissues?\s*#?\s*\d+\b"
    r"|\(#\d+\)"
    r"|\b(?:see|cf\.?|per|in|fixes|fixed|closes|closed|bug|ticket|tracker)\s+#\d+\b",
    re.IGNORECASE,
)


def _source_files() -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder) / name
            if path == Path(__file__).resolve():
                continue  # its examples are citations on purpose
            if path.suffix in SUFFIXES or name in NAMES:
                found.append(path)
    return found


def test_the_walk_sees_python_templates_and_ci() -> None:
    seen = {p.relative_to(ROOT).as_posix() for p in _source_files()}
    assert {"Makefile", ".ci/run", "manage.py"} <= seen
    assert any(s.endswith(".html") for s in seen) and any(s.endswith(".js") for s in seen)


def test_no_comment_cites_an_issue_number() -> None:
    offenders = []
    for path in _source_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in CITATION.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            offenders.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)!r}")
    assert offenders == [], "state the reason instead of citing a tracker issue:\n" + "\n".join(
        offenders
    )


@pytest.mark.parametrize(
    "text",
    ["# see issue 12", "# fixed in #7", "as in issue\n# 17", "thresholds (#3)", "Issues 4 and 5"],
)
def test_the_pattern_catches_citations(text: str) -> None:
    assert CITATION.search(text)


@pytest.mark.parametrize(
    "text", ["No run #4242.", "color: #604134;", "no issues found", "fill='#234'"]
)
def test_the_pattern_leaves_ids_and_colours_alone(text: str) -> None:
    assert not CITATION.search(text)
