"""Item-level problems are skipped and listed (file + reason + what to do) while the import goes
on; conversions are recorded, not errors; an empty mask is a valid "no subject" item."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalsite.datasets.importing import ImportResult, dataset_import
from evalsite.datasets.models import AttributeSource, Item, ItemAttribute
from tests.datasets.builders import (
    make_set,
    png_bytes,
    write_manifest,
)

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def run(folder: Path, **kw: object) -> ImportResult:
    return dataset_import(path=folder, name="t", **kw)  # type: ignore[arg-type]


def skipped(result: ImportResult) -> dict[str, dict[str, str]]:
    return {e["file"]: e for e in result.report["skipped"]}


def notes(result: ImportResult) -> dict[str, str]:
    return {e["file"]: e["note"] for e in result.report["recorded"]}


def stored_mask(item: Item) -> np.ndarray:
    return np.asarray(Image.open(item.mask.path))


def test_item_conversions_reach_the_report_and_the_stored_mask(tmp_path):
    # The conversions themselves are tested item by item in tests/pipelines/test_imaging.py
    folder = make_set(tmp_path / "s", 1)
    graded = np.zeros((48, 64), np.uint8)
    graded[:, 32:] = 128
    (folder / "masks" / "item0.png").write_bytes(png_bytes(graded))
    result = run(folder)
    assert notes(result)["masks/item0.png"] == "graded mask (2 levels) binarised at > 127"
    assert (stored_mask(Item.objects.get()) == np.where(graded > 0, 255, 0)).all()


def test_truncated_jpeg_is_skipped_and_the_rest_imported(tmp_path):
    folder = make_set(tmp_path / "s", 3)
    data = (folder / "images" / "item1.jpg").read_bytes()
    (folder / "images" / "item1.jpg").write_bytes(data[: len(data) * 2 // 3])
    result = run(folder)
    e = skipped(result)["images/item1.jpg"]
    assert "cannot be decoded; the file is truncated or corrupt" in e["reason"]
    assert e["action"] == "re-export or re-download the file"
    assert result.version.item_count == 2


def test_image_without_mask_is_skipped(tmp_path):
    folder = make_set(tmp_path / "s", 2)
    (folder / "masks" / "item1.png").unlink()
    e = skipped(run(folder))["images/item1.jpg"]
    assert e["reason"] == "image without mask"
    assert "masks/item1.png" in e["action"] and "no subject" in e["action"]


def test_duplicate_image_is_skipped_naming_the_first_copy(tmp_path):
    folder = make_set(tmp_path / "s", 2)
    (folder / "images" / "copy.jpg").write_bytes((folder / "images" / "item0.jpg").read_bytes())
    (folder / "masks" / "copy.png").write_bytes((folder / "masks" / "item0.png").read_bytes())
    result = run(folder)
    e = skipped(result)["images/item0.jpg"]  # sorted order: copy.jpg is seen first
    assert e["reason"] == "duplicate image: same sha256 as images/copy.jpg"
    assert result.version.item_count == 2


def test_unknown_attribute_values_are_skipped_with_the_vocabulary(tmp_path):
    folder = make_set(tmp_path / "s", 3)
    write_manifest(
        folder,
        [
            {
                "image": "images/item0.jpg",
                "mask": "masks/item0.png",
                "skin_tone": "4",
                "perceived_gender": "woman",
            },
            {
                "image": "images/item1.jpg",
                "mask": "masks/item1.png",
                "skin_tone": "brown",
                "perceived_gender": "man",
            },
            {
                "image": "images/item2.jpg",
                "mask": "masks/item2.png",
                "skin_tone": "11",
                "perceived_gender": "female",
            },
        ],
    )
    result = run(folder)
    by_file = {e["file"]: e for e in result.report["skipped"]}
    e1 = by_file["manifest.csv line 3 (images/item1.jpg)"]
    assert e1["reason"] == "skin_tone 'brown' is not in the vocabulary"
    assert "Monk scale number 1-10, not_applicable" in e1["action"]
    assert "skin_tone '11'" in by_file["manifest.csv line 4 (images/item2.jpg)"]["reason"]
    assert result.version.item_count == 1


def test_unknown_gender_is_skipped(tmp_path):
    folder = make_set(tmp_path / "s", 2)
    write_manifest(
        folder,
        [
            {"image": "images/item0.jpg", "mask": "masks/item0.png", "perceived_gender": "woman"},
            {"image": "images/item1.jpg", "mask": "masks/item1.png", "perceived_gender": "female"},
        ],
    )
    e = skipped(run(folder))["manifest.csv line 3 (images/item1.jpg)"]
    assert e["reason"] == "perceived_gender 'female' is not in the vocabulary"
    assert "woman, man, other, not_applicable" in e["action"]


def test_empty_mask_is_a_valid_no_subject_item(tmp_path):
    folder = make_set(tmp_path / "s", 3, fracs=[0.25, 0.0, 0.5])
    result = run(folder)
    assert result.report["skipped"] == []
    assert result.version.item_count == 3 and result.version.no_subject_count == 1
    empty = Item.objects.get(stem="item1")
    assert empty.size_bucket == "none" and empty.fg_fraction == 0.0 and empty.is_no_subject


def test_size_buckets_follow_the_foreground_share(tmp_path):
    run(make_set(tmp_path / "s", 4, w=100, h=100, fracs=[0.0, 0.02, 0.2, 0.6]))
    assert dict(Item.objects.values_list("stem", "size_bucket")) == {
        "item0": "none",
        "item1": "small",
        "item2": "medium",
        "item3": "large",
    }


def test_manifest_columns_become_attributes_tags_and_metadata(tmp_path):
    folder = make_set(tmp_path / "s", 2)
    write_manifest(
        folder,
        [
            {
                "image": "images/item0.jpg",
                "mask": "masks/item0.png",
                "skin_tone": "7",
                "perceived_gender": "man",
                "tags": "person;outdoor",
                "attribute_source": "synthetic",
                "source": "drawn",
                "licence": "CC0",
            },
            {
                "image": "images/item1.jpg",
                "mask": "masks/item1.png",
                "skin_tone": "",
                "perceived_gender": "not_applicable",
                "tags": "",
                "attribute_source": "",
                "source": "photo",
                "licence": "research only",
            },
        ],
    )
    result = run(folder)
    item = Item.objects.get(stem="item0")
    assert item.tags == ["person", "outdoor"]
    assert item.metadata["source"] == "drawn" and item.metadata["licence"] == "CC0"
    assert result.revision is not None and result.revision.number == 1
    labels = {a.item.stem: a for a in ItemAttribute.objects.select_related("item")}
    assert (labels["item0"].skin_tone, labels["item0"].source) == ("7", AttributeSource.SYNTHETIC)
    assert (labels["item1"].skin_tone, labels["item1"].source) == ("unknown", "manifest")
    assert result.revision.source == AttributeSource.MANIFEST  # mixed → per-label sources


def test_images_missing_from_the_manifest_are_listed(tmp_path):
    folder = make_set(tmp_path / "s", 2)
    write_manifest(folder, [{"image": "images/item0.jpg", "mask": "masks/item0.png"}])
    e = skipped(run(folder))["images/item1.jpg"]
    assert e["reason"] == "not listed in manifest.csv; ignored"


def test_manifest_path_outside_the_set_is_skipped(tmp_path):
    folder = make_set(tmp_path / "s", 1)
    write_manifest(
        folder,
        [
            {"image": "images/item0.jpg", "mask": "masks/item0.png"},
            {"image": "../secret.jpg", "mask": "masks/item0.png"},
        ],
    )
    e = skipped(run(folder))["manifest.csv line 3"]
    assert "leaves the set folder" in e["reason"]


def test_instance_masks_are_imported(tmp_path):
    folder = make_set(tmp_path / "s", 1)
    (folder / "instances" / "item0").mkdir(parents=True)
    left, right = np.zeros((48, 64), np.uint8), np.zeros((48, 64), np.uint8)
    left[10:20, 5:20] = 255
    right[10:20, 40:60] = 255
    (folder / "instances" / "item0" / "1.png").write_bytes(png_bytes(left))
    (folder / "instances" / "item0" / "2.png").write_bytes(png_bytes(right))
    run(folder)
    instances = Item.objects.get().instances
    assert len(instances) == 2
    assert instances[0]["fg_fraction"] == pytest.approx(150 / (48 * 64), abs=1e-6)
