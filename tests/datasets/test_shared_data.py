"""Real sets from ../shared/data: SOD (300 pairs) under a minute and unchanged on re-import;
PASCAL-S (500 pairs) with its 4 empty masks counted as "no subject"."""

from __future__ import annotations

import time

import pytest

from evalsite.datasets.importing import dataset_import
from evalsite.datasets.models import DatasetVersion, Item

pytestmark = [pytest.mark.django_db, pytest.mark.shared_data, pytest.mark.no_services]

SOD_BUDGET_S = 60  # a whole SOD import within a minute on the 2-core reference machine


def test_sod_imports_300_items_in_under_a_minute_and_again_is_unchanged(shared_data):
    started = time.monotonic()
    first = dataset_import(path=shared_data / "sod", name="sod")
    elapsed = time.monotonic() - started
    assert first.outcome == "created"
    assert first.version.item_count == 300 and first.report["skipped"] == []
    assert elapsed < SOD_BUDGET_S, f"SOD import took {elapsed:.1f} s"
    assert Item.objects.filter(version=first.version, fg_fraction__lt=0.01).count() == 2
    rotated = Item.objects.get(version=first.version, stem="100080")
    assert (rotated.width, rotated.height) == (321, 481)
    assert "rotated" in rotated.metadata["source"]

    again = dataset_import(path=shared_data / "sod", name="sod")
    assert again.outcome == "unchanged" and again.version == first.version
    assert DatasetVersion.objects.count() == 1


def test_pascal_s_imports_500_items_with_4_no_subject(shared_data):
    result = dataset_import(path=shared_data / "pascal-s", name="pascal-s")
    version = result.version
    assert version.item_count == 500 and result.report["skipped"] == []
    assert version.no_subject_count == 4
    empty = set(
        Item.objects.filter(version=version, size_bucket="none").values_list("stem", flat=True)
    )
    assert empty == {"359", "408", "424", "460"}
    assert Item.objects.filter(version=version, fg_fraction__lt=0.01).count() == 10
