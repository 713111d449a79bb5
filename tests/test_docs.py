"""The docs a newcomer reads stay short, self-contained and complete.

README.md is read in ten minutes (at most 200 lines; the detail lives in docs/, SECURITY.md and
bench/results/HISTORY.md); every relative link in the docs opens a file of this repository; no doc
sends a reader to the workspace's shared folder, which a clone does not have (the conventions and
contracts are copied into docs/); and the README's settings table names every variable the
settings read.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_services

ROOT = Path(__file__).resolve().parent.parent
TOP = ["README.md", "SECURITY.md", "ARCHITECTURE.md", "bench/results/HISTORY.md"]
DOCS = sorted([*(ROOT / name for name in TOP), *(ROOT / "docs").rglob("*.md")])
# [text](target) — the target up to the first space or ")"; images too.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
ENV_READ = re.compile(r"\benv_[a-z_]+\(\s*\"([A-Z][A-Z0-9_]+)\"")


def relative_links(text: str) -> list[str]:
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, mailto:, an anchor in the same page
        targets.append(target.split("#", 1)[0])
    return targets


def test_the_readme_is_at_most_200_lines() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_docs_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in DOCS}
    assert {"README.md", "SECURITY.md", "ARCHITECTURE.md", "docs/deploy.md"} <= names
    assert "docs/conventions.md" in names and "docs/contracts/metrics.md" in names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_opens_a_file_of_the_repository(doc: Path) -> None:
    broken = []
    for target in relative_links(doc.read_text(encoding="utf-8")):
        path = (doc.parent / target).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert broken == [], f"{doc.relative_to(ROOT)} links to missing files: {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_doc_points_at_the_shared_folder(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert "../shared" not in text, f"{doc.relative_to(ROOT)} points at ../shared; copy into docs/"


def test_the_link_check_sees_links_and_leaves_urls_and_anchors() -> None:
    text = "[a](docs/x.md#part) [b](https://example.org) [c](#settings) ![d](img/y.png)"
    assert relative_links(text) == ["docs/x.md", "img/y.png"]


def test_the_settings_table_names_every_variable_the_settings_read() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", table, flags=re.M))
    read = set()
    for source in [ROOT / "evalsite" / "settings.py", *(ROOT / "evalsite").glob("*/settings*.py")]:
        read |= set(ENV_READ.findall(source.read_text(encoding="utf-8")))
    assert read, "found no env_*() call in evalsite/settings.py"
    assert sorted(read - rows) == [], "variables read but missing from the README settings table"
