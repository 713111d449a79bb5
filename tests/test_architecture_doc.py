"""ARCHITECTURE.md names only things that exist.

Every file path it mentions in backticks exists in the repository; every dotted Python name
(`pipelines.release.deltas.paired_deltas`, `evalsite.core.jobs.job_create`, `tasks._ride_out`) and
every called name (`leaderboard_refresh(…)`) is defined (`def` / `class` / an assignment) where it
says; every dotted string that is not a Python name (a job kind such as `evals.run`, a Celery task
name) is a string literal of the code; every upper-case constant is assigned somewhere. Renaming
or deleting something the page names fails here until the page follows.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_services

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "ARCHITECTURE.md"
PACKAGES = ("evalsite", "pipelines", "ratings", "models", "tests", "bench", "examples")
SKIP_DIRS = {".git", ".venv", "var", "node_modules", "__pycache__", "migrations"}

CODE = re.compile(r"`([^`\n]+)`")
PATH = re.compile(r"^\.?[\w.-]+(?:/[\w.*-]+)*/?$")
FILE_SUFFIXES = (".py", ".md", ".html", ".js", ".css", ".json", ".txt", ".toml", ".yml", ".cfg")
DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")
CALL = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\(")
# Django names the page cites (their definitions live in site-packages, not here).
EXTERNAL = {"bulk_create", "update_or_create", "get_object_or_404", "Http404", "LookupError"}
CONSTANT = re.compile(r"^[A-Z][A-Z0-9_]{4,}$")  # not GET / POST


@functools.cache
def python_files() -> tuple[Path, ...]:
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path == Path(__file__).resolve():
                continue  # its examples of missing names are string literals on purpose
            if not SKIP_DIRS & set(path.relative_to(ROOT).parts):
                found.append(path)
    return tuple(found)


@functools.cache
def source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def defines(text: str, name: str) -> bool:
    pattern = rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b|^\s*{re.escape(name)}\s*[:=]"
    return re.search(pattern, text, flags=re.M) is not None


def module_file(parts: list[str]) -> Path | None:
    """The file of the dotted module `parts` (a package's `__init__.py`), or None."""
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def name_exists(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] in PACKAGES:
        # The longest module prefix, then each attribute defined in that module.
        for cut in range(len(parts), 0, -1):
            path = module_file(parts[:cut])
            if path is not None:
                return all(defines(source(path), attr) for attr in parts[cut:])
        return False
    # A short `module.name` (`tasks._ride_out`, `jobs.job_create`) or `Class.attribute`.
    head, rest = parts[0], parts[1:]
    for path in python_files():
        text = source(path)
        if path.stem == head and all(defines(text, attr) for attr in rest):
            return True
        is_class = re.search(rf"^class {re.escape(head)}\b", text, flags=re.M)
        if is_class and all(defines(text, attr) for attr in rest):
            return True
    return False


def string_literal_exists(value: str) -> bool:
    needles = (f'"{value}"', f"'{value}'")
    return any(n in source(p) for p in python_files() for n in needles)


def defined_anywhere(name: str) -> bool:
    return any(defines(source(p), name) for p in python_files())


def mentions() -> list[str]:
    return sorted(set(CODE.findall(DOC.read_text(encoding="utf-8"))))


def problems_with(token: str) -> str | None:
    token = token.strip()
    call = CALL.match(token)
    if call:
        name = call.group(1)
        if name in EXTERNAL:
            return None
        if "." in name:
            return None if name_exists(name) else f"{name} is not defined where it says"
        return None if defined_anywhere(name) else f"{name}() is defined nowhere"
    if any(c in token for c in "<>…*{}|=,") or " " in token:
        return None  # a pattern, a command line or prose
    if "/" in token and PATH.match(token):
        path = ROOT / token.rstrip("/")
        return None if path.exists() else f"path {token} does not exist"
    if token.endswith(FILE_SUFFIXES) and PATH.match(token):
        # A bare file name (`jobs.py`, "the app's jobs.py") names a file somewhere in the tree.
        found = (ROOT / token).exists() or any(p.name == token for p in python_files())
        return None if found else f"no file named {token}"
    if DOTTED.match(token):
        if name_exists(token) or string_literal_exists(token):
            return None
        return f"{token} is neither a Python name nor a string of the code"
    if CONSTANT.match(token):
        return None if defined_anywhere(token) else f"constant {token} is assigned nowhere"
    return None


def test_the_page_mentions_paths_and_names() -> None:
    tokens = mentions()
    assert any("/" in t for t in tokens) and any(DOTTED.match(t) for t in tokens)


def test_every_path_and_name_the_page_mentions_exists() -> None:
    problems = [p for p in map(problems_with, mentions()) if p]
    assert problems == [], "ARCHITECTURE.md names things that do not exist:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("token", "ok"),
    [
        ("pipelines/hashing.py", True),
        ("pipelines/no_such_module.py", False),
        ("jobs.py", True),
        ("no_such_file.py", False),
        ("evalsite.core.jobs.job_create", True),
        ("evalsite.core.jobs.no_such_function", False),
        ("tasks._ride_out", True),
        ("evals.run", True),  # a job kind
        ("evals.no_such_kind", False),
        ("leaderboard_refresh(force=True)", True),
        ("no_such_function()", False),
        ("JOB_MAX_ATTEMPTS", True),
        ("NO_SUCH_SETTING_XYZ", False),
    ],
)
def test_the_checker_tells_real_names_from_missing_ones(token: str, ok: bool) -> None:
    assert (problems_with(token) is None) is ok
