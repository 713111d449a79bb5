"""One item of a set import, without a database: a bad file becomes a skip entry (file, reason,
what to do), a conversion becomes a note, and the staged mask is 0/255 by the ground-truth rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.imaging import ItemOutcome, ItemTask, process_item
from pipelines.masks import gt_foreground, pred_foreground
from pipelines.metrics.functional import binarise
from tests.datasets.builders import box_mask, jpeg_bytes, photo, png_bytes

#: The import's default decompression-bomb limit (DATASET_MAX_PIXELS).
MAX_PIXELS = 40_000_000


def process(
    tmp_path: Path,
    *,
    image: bytes | None = None,
    mask: bytes | None = None,
    image_name: str = "item0.jpg",
    instances: tuple[bytes, ...] = (),
) -> ItemOutcome:
    """Write the item's files (a photo and a box mask unless given) and process it."""
    staging = tmp_path / "staging"
    staging.mkdir(exist_ok=True)
    (tmp_path / "images").mkdir(exist_ok=True)
    (tmp_path / "masks").mkdir(exist_ok=True)
    image_path, mask_path = tmp_path / "images" / image_name, tmp_path / "masks" / "item0.png"
    image_path.write_bytes(jpeg_bytes(photo()) if image is None else image)
    mask_path.write_bytes(png_bytes(box_mask()) if mask is None else mask)
    inst = []
    for k, data in enumerate(instances, start=1):
        (tmp_path / f"{k}.png").write_bytes(data)
        inst.append((str(tmp_path / f"{k}.png"), f"instances/item0/{k}.png"))
    task = ItemTask(
        stem="item0", image=str(image_path), image_label=f"images/{image_name}",
        mask=str(mask_path), mask_label="masks/item0.png", staging=str(staging),
        max_pixels=MAX_PIXELS, instances=tuple(inst),
    )  # fmt: skip
    return process_item(task)


def notes(out: ItemOutcome) -> dict[str, str]:
    return {n["file"]: n["note"] for n in out.notes}


def stored_mask(out: ItemOutcome) -> np.ndarray:
    assert out.mask is not None
    return np.asarray(Image.open(out.mask.path))


def test_a_plain_item_is_staged_with_its_derived_copies(tmp_path):
    out = process(tmp_path)
    assert out.ok and out.skip is None and out.notes == []
    assert (out.width, out.height) == (64, 48)
    assert (stored_mask(out) == box_mask()).all()
    assert out.fg_fraction == pytest.approx((box_mask() > 0).mean())
    for blob in (out.image, out.mask, out.web, out.web_overlay, out.thumb, out.thumb_overlay):
        assert blob is not None and Path(blob.path).name == f"{blob.sha256}{blob.ext}"


def test_undecodable_image_is_skipped(tmp_path):
    out = process(tmp_path, image=b"GIF89a not really" + bytes(200))
    assert not out.ok and out.skip is not None
    assert out.skip["file"] == "images/item0.jpg"
    assert "image is not a readable image" in out.skip["reason"]
    assert "JPEG or PNG" in out.skip["action"]


def test_decompression_bomb_over_the_40_mp_limit_is_skipped(tmp_path):
    # Given a 42 MP picture that is only a few KB on disk (1-bit PNG of zeros)
    bomb = tmp_path / "bomb.png"
    Image.new("1", (7000, 6000)).save(bomb)
    assert bomb.stat().st_size < 100_000
    out = process(tmp_path, image=bomb.read_bytes(), image_name="item0.png")
    assert out.skip is not None and out.skip["file"] == "images/item0.png"
    assert (
        "7000×6000 = 42.0 MP, over the 40 MP limit (decompression-bomb guard)"
        in (out.skip["reason"])
    )
    assert "downscale" in out.skip["action"]


def test_mask_size_differing_from_the_image_is_skipped(tmp_path):
    out = process(tmp_path, mask=png_bytes(box_mask(32, 24)))
    assert out.skip is not None and out.skip["file"] == "masks/item0.png"
    assert out.skip["reason"] == "mask is 32×24 but its image is 64×48"
    assert "export the mask at the image's size" in out.skip["action"]


def test_graded_mask_is_binarised_above_127_and_recorded(tmp_path):
    graded = np.zeros((48, 64), np.uint8)
    graded[:, 16:32] = 127  # 5.x/12 annotators: background
    graded[:, 32:48] = 128  # 6/12 annotators: foreground
    graded[:, 48:] = 255
    out = process(tmp_path, mask=png_bytes(graded))
    assert notes(out)["masks/item0.png"] == "graded mask (4 levels) binarised at > 127"
    stored = stored_mask(out)
    assert set(np.unique(stored)) == {0, 255}
    assert (stored[:, :32] == 0).all() and (stored[:, 32:] == 255).all()
    assert (stored == np.where(gt_foreground(graded), 255, 0)).all()


def test_0_1_mask_reads_1_as_foreground(tmp_path):
    out = process(tmp_path, mask=png_bytes((box_mask() > 0).astype(np.uint8)))
    assert notes(out)["masks/item0.png"] == "mask uses values 0/1; read 1 as foreground"
    assert (stored_mask(out) == box_mask()).all()


def test_16_bit_mask_is_converted_and_recorded(tmp_path):
    m16 = tmp_path / "m16.png"
    Image.fromarray(box_mask().astype(np.uint16) * 257).save(m16)  # 0 / 65535
    assert Image.open(m16).mode.startswith("I")
    out = process(tmp_path, mask=m16.read_bytes())
    assert "16-bit mask" in notes(out)["masks/item0.png"]
    assert "converted to 8-bit" in notes(out)["masks/item0.png"]
    assert (stored_mask(out) == box_mask()).all()


def test_cmyk_jpeg_is_converted_to_rgb_and_recorded(tmp_path):
    out = process(tmp_path, image=jpeg_bytes(photo().convert("CMYK")))
    assert notes(out)["images/item0.jpg"] == "CMYK converted to RGB"
    assert out.image is not None and out.image.ext == ".png"
    assert Image.open(out.image.path).mode == "RGB"


def test_palette_png_is_converted_to_rgb_and_recorded(tmp_path):
    out = process(tmp_path, image=png_bytes(photo().quantize(64)), image_name="item0.png")
    assert notes(out)["images/item0.png"] == "palette image converted to RGB"
    assert out.image is not None and Image.open(out.image.path).mode == "RGB"


def test_exif_rotated_jpeg_is_stored_upright_and_recorded(tmp_path):
    # Given a phone photo: pixels stored sideways (48×64) with EXIF orientation 6, and a mask
    # drawn on the upright 64×48 picture
    upright = photo(64, 48, seed=3)
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = process(tmp_path, image=jpeg_bytes(sideways, exif=exif.tobytes()))
    # Then the orientation is applied (so the mask fits) and recorded
    assert notes(out)["images/item0.jpg"] == "EXIF orientation 6 applied"
    assert (out.width, out.height) == (64, 48)
    assert out.image is not None
    stored = np.asarray(Image.open(out.image.path)).astype(int)
    assert np.abs(stored - np.asarray(upright).astype(int)).mean() < 12


def test_instance_masks_are_staged_with_their_foreground_share(tmp_path):
    left, right = np.zeros((48, 64), np.uint8), np.zeros((48, 64), np.uint8)
    left[10:20, 5:20] = 255
    right[10:20, 40:60] = 200  # graded: foreground by the same rule as the item's mask
    out = process(tmp_path, instances=(png_bytes(left), png_bytes(right)))
    assert [frac for _, frac in out.instances] == pytest.approx([150 / 3072, 200 / 3072])
    staged = np.asarray(Image.open(out.instances[1][0].path))
    assert (staged == np.where(right > 0, 255, 0)).all()


def test_instance_mask_of_another_size_drops_the_items_instances(tmp_path):
    out = process(tmp_path, instances=(png_bytes(box_mask()), png_bytes(box_mask(32, 24))))
    assert out.ok and out.instances == []
    assert [n["kind"] for n in out.notes] == ["instances_ignored"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.array([0, 127, 128, 255], np.uint8), [False, False, True, True]),
        (np.array([127.0, 127.5, 200.0]), [False, True, True]),
        (np.array([0, 1], np.uint8), [False, False]),  # 0/1 must be scaled by the caller
    ],
)
def test_gt_foreground_is_above_127_on_the_8_bit_scale(values, expected):
    assert gt_foreground(values).tolist() == expected


def test_pred_foreground_is_the_metrics_binarisation_on_every_8_bit_value():
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert (pred_foreground(values) == binarise(values).astype(bool)).all()
    assert pred_foreground(values).ravel().tolist().index(True) == 128
