"""`make demo`'s registry step: shipped candidates + builtin baseline, idempotent."""

from __future__ import annotations

import pytest

from models import demo
from models.models import Alias, ModelVersion

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def test_demo_setup_registers_what_is_shipped_and_is_idempotent():
    lines: list[str] = []
    demo.setup(lines.append)
    shipped = [v for v, _ in demo.CANDIDATES if demo.fixture_path(v).is_file()]
    missing = [v for v, _ in demo.CANDIDATES if v not in shipped]
    versions = dict(ModelVersion.objects.values_list("version", "status"))
    assert versions == {demo.BASELINE_VERSION: "ready", **{v: "ready" for v in shipped}}, lines
    for version in missing:
        assert any(f"skipped subject-lift:{version}" in line for line in lines)
    aliases = dict(Alias.objects.values_list("name", "version__version"))
    assert aliases == {alias: v for v, alias in demo.CANDIDATES if v in shipped}
    if shipped:
        card = ModelVersion.objects.get(version=shipped[0]).card
        assert card and not card.endswith(".card.md"), "the card file's text, not its name"

    again: list[str] = []
    demo.setup(again.append)
    assert ModelVersion.objects.count() == len(versions)
    assert all("unchanged" in line for line in again if line.startswith("    subject-lift:"))
