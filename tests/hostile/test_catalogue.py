"""The catalogue, its tests and the SECURITY.md table agree: one row per case, one test per case."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile import (
    test_archives,
    test_forwarded,
    test_imports,
    test_logins,
    test_lookalikes,
    test_numbers,
    test_predictions,
    test_rating,
    test_registry,
    test_settings_doors,
    test_smaller,
    test_text,
    test_url_fuzz,
)
from tests.hostile.catalogue import BEGIN, CASES, END, security_table

pytestmark = pytest.mark.no_services

SECURITY = Path(__file__).resolve().parents[2] / "SECURITY.md"


def test_the_catalogue_holds_at_least_40_distinct_cases() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 40


def test_every_case_has_a_test_and_every_test_a_case() -> None:
    tested = set().union(*(m.CASE_IDS for m in (
        test_imports, test_logins, test_predictions, test_rating, test_registry, test_smaller,
        test_forwarded, test_numbers, test_settings_doors, test_url_fuzz,
        test_archives, test_lookalikes, test_text,
    )))  # fmt: skip
    listed = {c.id for c in CASES}
    assert sorted(listed - tested) == [], "catalogue cases without a test"
    assert sorted(tested - listed) == [], "tests of cases missing from the catalogue"


def test_the_security_table_is_the_catalogue() -> None:
    text = SECURITY.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, f"SECURITY.md needs the {BEGIN} … {END} block"
    table = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert table == security_table(), (
        "SECURITY.md's hostile-input table differs from tests/hostile/catalogue.py; regenerate it "
        "with `python -m tests.hostile.catalogue`"
    )
