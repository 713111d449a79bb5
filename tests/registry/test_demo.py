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


def test_demo_moves_only_the_aliases_it_set_itself(researcher):
    from models import services
    from models.models import ModelFamily

    demo.setup(lambda _line: None)
    family = ModelFamily.objects.get(name=demo.FAMILY)
    v110 = ModelVersion.objects.get(family=family, version="1.1.0")
    v120 = ModelVersion.objects.get(family=family, version="1.2.0")
    assert v120.parent == v110
    # A demo database from before 1.2.0: `candidate` on 1.1.0, put there by the demo.
    services.alias_move(
        family=family, name="candidate", version=v110, user=None, reason=demo.DEMO_REASON
    )
    demo.setup(lambda _line: None)
    assert Alias.objects.get(family=family, name="candidate").version == v120
    # A person moved it back since: the demo leaves it where they put it.
    services.alias_move(
        family=family, name="candidate", version=v110, user=researcher, reason="prefer 1.1.0"
    )
    demo.setup(lambda _line: None)
    assert Alias.objects.get(family=family, name="candidate").version == v110
