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
    box_mask,
    jpeg_bytes,
    make_set,
    photo,
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


def test_truncated_jpeg_is_skipped_and_the_rest_imported(tmp_path):
    folder = make_set(tmp_path / "s", 3)
    data = (folder / "images" / "item1.jpg").read_bytes()
    (folder / "images" / "item1.jpg").write_bytes(data[: len(data) * 2 // 3])
    result = run(folder)
    e = skipped(result)["images/item1.jpg"]
    assert "cannot be decoded; the file is truncated or corrupt" in e["reason"]
    assert e["action"] == "re-export or re-download the file"
    assert result.version.item_count == 2


def test_undecodable_image_is_skipped(tmp_path):
    folder = make_set(tmp_path / "s", 2)
    (folder / "images" / "item1.jpg").write_bytes(b"GIF89a not really" + bytes(200))
    e = skipped(run(folder))["images/item1.jpg"]
    assert "image is not a readable image" in e["reason"]
    assert "JPEG or PNG" in e["action"]


def test_decompression_bomb_over_the_default_40_mp_limit_is_skipped(tmp_path):
    # Given a 42 MP picture that is only a few KB on disk (1-bit PNG of zeros)
    folder = make_set(tmp_path / "s", 2)
    (folder / "images" / "item1.jpg").unlink()
    Image.new("1", (7000, 6000)).save(folder / "images" / "item1.png")
    assert (folder / "images" / "item1.png").stat().st_size < 100_000
    e = skipped(run(folder))["images/item1.png"]
    assert "7000×6000 = 42.0 MP, over the 40 MP limit (decompression-bomb guard)" in e["reason"]
    assert "downscale" in e["action"]


def test_mask_size_differing_from_the_image_is_skipped(tmp_path):
    folder = make_set(tmp_path / "s", 2)
    (folder / "masks" / "item1.png").write_bytes(png_bytes(box_mask(32, 24)))
    e = skipped(run(folder))["masks/item1.png"]
    assert e["reason"] == "mask is 32×24 but its image is 64×48"
    assert "export the mask at the image's size" in e["action"]


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


def test_graded_mask_is_binarised_above_127_and_recorded(tmp_path):
    folder = make_set(tmp_path / "s", 1)
    graded = np.zeros((48, 64), np.uint8)
    graded[:, 16:32] = 127  # 5.x/12 annotators: background
    graded[:, 32:48] = 128  # 6/12 annotators: foreground
    graded[:, 48:] = 255
    (folder / "masks" / "item0.png").write_bytes(png_bytes(graded))
    result = run(folder)
    assert notes(result)["masks/item0.png"] == "graded mask (4 levels) binarised at > 127"
    stored = stored_mask(Item.objects.get())
    assert set(np.unique(stored)) == {0, 255}
    assert (stored[:, :32] == 0).all() and (stored[:, 32:] == 255).all()


def test_16_bit_mask_is_converted_and_recorded(tmp_path):
    folder = make_set(tmp_path / "s", 1)
    m16 = box_mask().astype(np.uint16) * 257  # 0 / 65535
    Image.fromarray(m16).save(folder / "masks" / "item0.png")
    assert Image.open(folder / "masks" / "item0.png").mode.startswith("I")
    result = run(folder)
    assert "16-bit mask" in notes(result)["masks/item0.png"]
    assert "converted to 8-bit" in notes(result)["masks/item0.png"]
    assert (stored_mask(Item.objects.get()) == box_mask()).all()


def test_cmyk_jpeg_is_converted_to_rgb_and_recorded(tmp_path):
    folder = make_set(tmp_path / "s", 1)
    (folder / "images" / "item0.jpg").write_bytes(jpeg_bytes(photo().convert("CMYK")))
    result = run(folder)
    assert notes(result)["images/item0.jpg"] == "CMYK converted to RGB"
    item = Item.objects.get()
    assert item.image.name.endswith(".png") and Image.open(item.image.path).mode == "RGB"


def test_palette_png_is_converted_to_rgb_and_recorded(tmp_path):
    folder = make_set(tmp_path / "s", 1)
    (folder / "images" / "item0.jpg").unlink()
    photo().quantize(64).save(folder / "images" / "item0.png")
    assert Image.open(folder / "images" / "item0.png").mode == "P"
    result = run(folder)
    assert notes(result)["images/item0.png"] == "palette image converted to RGB"
    assert Image.open(Item.objects.get().image.path).mode == "RGB"


def test_exif_rotated_jpeg_is_stored_upright_and_recorded(tmp_path):
    # Given a phone photo: pixels stored sideways (48×64) with EXIF orientation 6, and a mask
    # drawn on the upright 64×48 picture
    folder = make_set(tmp_path / "s", 1)
    upright = photo(64, 48, seed=3)
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    (folder / "images" / "item0.jpg").write_bytes(jpeg_bytes(sideways, exif=exif.tobytes()))
    # When imported
    result = run(folder)
    # Then the orientation is applied (so the mask fits) and recorded
    assert notes(result)["images/item0.jpg"] == "EXIF orientation 6 applied"
    item = Item.objects.get()
    assert (item.width, item.height) == (64, 48)
    stored = np.asarray(Image.open(item.image.path)).astype(int)
    assert np.abs(stored - np.asarray(upright).astype(int)).mean() < 12


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
