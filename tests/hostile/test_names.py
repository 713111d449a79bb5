"""Canonical names (evalsite/core/names.py): one normal form, no look-alikes, held by the DB."""

from __future__ import annotations

import importlib
import unicodedata

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction

from evalsite.core.names import NameRejected, canonical_name, name_problem, skeleton
from models.models import Alias, ModelFamily
from tests.registry.factories import VersionFactory

migration = importlib.import_module("models.migrations.0003_canonical_names")

SAME_AS_PRODUCTION = [
    "production",
    "Production",
    "PRODUCTION",
    "ｐｒｏｄｕｃｔｉｏｎ",
    "PRODuction",
]
REFUSED = {
    "production\n": "U+000A",
    "production\r": "U+000D",
    "\tproduction": "U+0009",
    " production": "U+0020",
    "production ": "U+0020",
    "prod\u00aduction": "U+00AD",  # soft hyphen (format character)
    "prod\u200duction": "U+200D",  # zero-width joiner
    "\ufeffproduction": "U+FEFF",
    "product\u0131on": "DOTLESS I",  # NFKC keeps it: not ASCII
    "pr\u043eduction": "CYRILLIC SMALL LETTER O",
    "productio\u0301n": "U+0301",  # combining acute accent
    "production.": "end with a letter or digit",
    "production-": "end with a letter or digit",
    "production_": "end with a letter or digit",
    "prod.uction": "looks like the reserved alias 'production'",
    "pr0ducti0n": "looks like the reserved alias 'production'",
    "PRODUCT1ON": "looks like the reserved alias 'production'",
    "productlon": "looks like the reserved alias 'production'",
    "cand1date": "looks like the reserved alias 'candidate'",
    "1production": "names starting with a digit are versions",
    "": "is required",
}


@pytest.mark.no_services
@pytest.mark.parametrize("raw", SAME_AS_PRODUCTION)
def test_case_and_width_variants_are_the_production_alias_itself(raw: str) -> None:
    assert canonical_name(raw, kind="alias") == "production"


@pytest.mark.no_services
@pytest.mark.parametrize(("raw", "words"), REFUSED.items(), ids=[repr(k) for k in REFUSED])
def test_look_alikes_and_invisible_characters_are_refused(raw: str, words: str) -> None:
    with pytest.raises(NameRejected, match=None) as err:
        canonical_name(raw, kind="alias")
    assert words in str(err.value)


@pytest.mark.no_services
def test_no_accepted_alias_looks_like_a_reserved_one_across_all_single_edits() -> None:
    # Every single-character substitution/insertion of production that passes is not a
    # look-alike by the skeleton rule, and every one that is a look-alike is refused.
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789._-"
    word = "production"
    for i in range(len(word) + 1):
        for ch in alphabet:
            for candidate in (word[:i] + ch + word[i:], word[:i] + ch + word[i + 1 :]):
                try:
                    name = canonical_name(candidate, kind="alias")
                except NameRejected:
                    continue
                assert name == word or skeleton(name) != skeleton(word), candidate


@pytest.mark.no_services
def test_every_door_gets_the_same_rule_for_versions_families_and_sets() -> None:
    assert canonical_name("1.2.0-RC1", kind="version") == "1.2.0-rc1"
    assert canonical_name("Subject-Lift", kind="family") == "subject-lift"
    assert name_problem("SOD", kind="set") == (
        "Write the set name 'SOD' in its canonical form 'sod'."
    )
    for kind in ("version", "family", "set"):
        assert name_problem("x\n" if kind != "version" else "1\n", kind=kind)  # type: ignore[arg-type]
    assert unicodedata.is_normalized("NFKC", canonical_name("ﬁle", kind="family"))


@pytest.mark.django_db
@pytest.mark.no_services
def test_the_database_refuses_a_second_family_differing_only_in_case() -> None:
    ModelFamily.objects.create(name="subject-lift")
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelFamily.objects.create(name="Subject-Lift")  # bypassing every door


@pytest.mark.django_db
@pytest.mark.no_services
def test_the_migration_canonicalises_existing_rows_and_stops_on_look_alikes() -> None:
    v = VersionFactory(version="1.0.0")
    ModelFamily.objects.filter(pk=v.family_id).update(name="Subject-Lift")
    Alias.objects.create(family=v.family, name="Candidate", version=v)
    migration.canonicalise(apps, None)
    assert ModelFamily.objects.get().name == "subject-lift"
    assert Alias.objects.get().name == "candidate"
    Alias.objects.create(family=v.family, name="production\n", version=v)
    with pytest.raises(RuntimeError, match="rename these rows") as err:
        migration.canonicalise(apps, None)
    assert "control character" in str(err.value)


@pytest.mark.django_db
@pytest.mark.no_services
def test_references_in_any_case_resolve_to_the_canonical_rows() -> None:
    from models.selectors import model_version_resolve

    v = VersionFactory(version="1.0.0")
    Alias.objects.create(family=v.family, name="production", version=v)
    assert model_version_resolve("Subject-Lift:PRODUCTION") == v
    assert model_version_resolve("SUBJECT-LIFT:1.0.0") == v
