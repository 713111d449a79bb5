"""`make demo` imports the committed demo sets, and a second run changes nothing."""

from __future__ import annotations

import pytest

from evalsite.datasets import demo
from evalsite.datasets.models import AttributeSource, DatasetVersion, ItemAttribute

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def test_demo_sets_import_once_with_no_subject_items_and_synthetic_labels():
    lines: list[str] = []
    demo.setup(lines.append)
    real = DatasetVersion.objects.get(dataset__name="pascal-s-demo")
    synthetic = DatasetVersion.objects.get(dataset__name="synthetic-people")
    assert (real.item_count, real.no_subject_count) == (30, 3)
    assert real.report["skipped"] == []
    assert {i.metadata["licence"] for i in real.items.all()} == {
        "PASCAL-S (images from PASCAL VOC 2010) - research use only"
    }
    test = DatasetVersion.objects.get(dataset__name="pascal-s-test")
    assert (test.item_count, test.no_subject_count) == (100, 0)
    assert test.dataset.description.startswith("100 real PASCAL-S photos")
    assert synthetic.item_count == 140 and synthetic.no_subject_count >= 5
    labels = ItemAttribute.objects.filter(revision__version=synthetic)
    people = labels.filter(source=AttributeSource.SYNTHETIC)
    assert people.count() == 130
    assert set(people.values_list("skin_tone", flat=True)) == {str(t) for t in range(1, 11)}
    assert set(people.values_list("perceived_gender", flat=True)) >= {"woman", "man"}

    groups = DatasetVersion.objects.get(dataset__name="synthetic-groups")
    assert groups.item_count == 12 and groups.no_subject_count == 0
    assert all(2 <= len(item.instances) <= 4 for item in groups.items.all())

    demo.setup(lines.append)
    assert DatasetVersion.objects.count() == 4
    assert sum("no new version" in line for line in lines) == 4
