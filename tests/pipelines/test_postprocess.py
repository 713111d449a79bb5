"""Post-processing chain: resize undo, gating, instances, cutouts, and the whole `postprocess`."""

from __future__ import annotations

import io
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from pipelines.postprocess import (
    MIN_INSTANCE_AREA_FRACTION,
    content_region,
    decide,
    instance_cutouts,
    postprocess,
    resolve_threshold,
    rgba_cutout,
    separate_instances,
    undo_resize,
    web_copy,
    web_size,
)
from pipelines.spec import build_spec, parse_spec, preprocess, resize_for_spec


def make_spec(
    resize: str = "stretch", size: int = 64, gate_threshold: float = 0.5
) -> dict[str, Any]:
    return build_spec(
        "torch_export",
        size=size,
        mean=(0, 0, 0),
        std=(1, 1, 1),
        resize=resize,
        gate_threshold=gate_threshold,
    )


def blob_photo(h: int = 120, w: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """A photo with a bright rectangle on grey and its exact mask."""
    photo = np.full((h, w, 3), 90, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : 3 * h // 4, w // 5 : 3 * w // 5] = 255
    photo[mask > 0] = (220, 200, 40)
    return photo, mask


# --- gating -------------------------------------------------------------------------------------


def test_gate_threshold_comes_from_the_run_then_the_spec() -> None:
    assert resolve_threshold(0.3, None) == 0.3
    assert resolve_threshold(0.3, 0.7) == 0.7
    assert resolve_threshold(None, None) == 0.5


def test_gate_is_strictly_below_threshold_and_never_without_confidence() -> None:
    assert decide(0.49, 0.5).gated and not decide(0.5, 0.5).gated
    assert not decide(None, 0.5).gated
    assert decide(float("nan"), 0.5).gated


def test_gating_zeroes_the_alpha_and_sets_the_flag() -> None:
    photo, mask = blob_photo()
    low = cv2.resize(mask.astype(np.float32) / 255, (64, 64), interpolation=cv2.INTER_AREA)
    gated = postprocess(low, 0.1, photo, make_spec())
    assert gated.gated and gated.confidence == pytest.approx(0.1)
    assert not gated.alpha_png.any() and not gated.alpha_full.any()
    assert gated.instance_count == 0
    assert gated.ungated_png.shape == photo.shape[:2] and gated.ungated_png.max() == 255
    kept = postprocess(low, 0.9, photo, make_spec())
    assert not kept.gated and kept.alpha_png.max() == 255 and kept.instance_count == 1
    override = postprocess(low, 0.9, photo, make_spec(), threshold=0.95)
    assert override.gated and override.threshold == 0.95
    no_gate = postprocess(low, 0.1, photo, make_spec(), gate=False)
    assert not no_gate.gated and np.array_equal(no_gate.alpha_png, gated.ungated_png)
    assert not postprocess(low, None, photo, make_spec()).gated


# --- instances ------------------------------------------------------------------------------------


def test_instances_finds_two_blobs_sorted_by_area_and_drops_a_speck() -> None:
    alpha = np.zeros((400, 500), np.uint8)
    alpha[20:120, 20:120] = 255  # 10 000 px
    alpha[200:380, 250:480] = 200  # 41 400 px: the largest
    alpha[300:305, 50:55] = 255  # 25 px speck < 0.2 % of 200 000 px
    alpha[150:160, 150:160] = 100  # below the 0.5 threshold: not foreground at all
    inst = separate_instances(alpha)
    assert len(inst) == 2
    assert [i.label for i in inst.items] == [1, 2]
    assert inst.items[0].area == 180 * 230 and inst.items[0].bbox == (250, 200, 230, 180)
    assert inst.items[1].area == 100 * 100
    assert inst.labels[300, 50] == 0 and inst.labels[210, 260] == 1 and inst.labels[30, 30] == 2
    assert MIN_INSTANCE_AREA_FRACTION * alpha.size > 25


def test_an_instance_head_map_replaces_connected_components() -> None:
    alpha = np.zeros((100, 100), np.uint8)
    alpha[10:90, 10:90] = 255  # one connected blob ...
    head = np.zeros((50, 50), np.int32)  # ... that the model's head splits in two (at half size)
    head[:, :20] = 7
    head[:, 20:] = 3
    inst = separate_instances(alpha, instance_map=head)
    assert len(inst) == 2
    assert inst.items[0].area == 80 * 50 and inst.items[1].area == 80 * 30
    assert inst.labels[0, 0] == 0  # background stays background


# --- cutouts --------------------------------------------------------------------------------------


def test_cutout_alpha_is_the_alpha_png() -> None:
    photo, mask = blob_photo()
    low = cv2.resize(mask.astype(np.float32) / 255, (64, 64), interpolation=cv2.INTER_AREA)
    res = postprocess(low, None, photo, make_spec())
    rgba = rgba_cutout(photo, res.alpha_png)
    assert rgba.shape == (*photo.shape[:2], 4) and rgba.dtype == np.uint8
    assert np.array_equal(rgba[..., 3], res.alpha_png) and np.array_equal(rgba[..., :3], photo)
    crops = instance_cutouts(photo, res.alpha_png, res.instances)
    assert len(crops) == 1
    _, _, w, h = res.instances.items[0].bbox
    assert crops[0].shape[0] >= h and crops[0].shape[1] >= w and crops[0].shape[2] == 4
    assert crops[0][..., 3].sum() == pytest.approx(int(res.alpha_png.sum()), rel=1e-3)


def test_web_copy_is_small_and_has_no_metadata(tmp_path: Any) -> None:
    big = np.zeros((3000, 1500, 3), np.uint8)
    assert web_size(big).shape == (1024, 512, 3)
    assert web_size(big[:100, :100]).shape == (100, 100, 3)
    exif = Image.Exif()
    exif[0x0110] = "SecretPhone"  # Model
    exif[0x0112] = 6  # rotate 90° on display
    path = tmp_path / "p.jpg"
    Image.fromarray(big).save(path, exif=exif.tobytes())
    with Image.open(io.BytesIO(web_copy(path))) as im:
        assert im.size == (1024, 512)  # EXIF-oriented: 3000 tall stored → displayed sideways
        assert not im.getexif() and "exif" not in im.info
    with Image.open(io.BytesIO(web_copy(big, fmt="JPEG"))) as im:
        assert im.format == "JPEG" and im.size == (512, 1024) and not im.getexif()


# --- resize undo ----------------------------------------------------------------------------------


def test_letterbox_round_trip_puts_the_alpha_back_on_the_photo() -> None:
    photo, mask = blob_photo(120, 200)
    spec = make_spec("letterbox", 64)
    _, info = preprocess(photo, parse_spec(spec))
    assert (info.height, info.width) != (64, 64)  # the photo really was boxed
    # A "perfect model": the mask, letterboxed exactly as the photo was.
    mask_in, mask_info = resize_for_spec(np.repeat(mask[..., None], 3, axis=2), parse_spec(spec))
    assert mask_info == info
    low = mask_in[..., 0].astype(np.float32) / 255.0
    assert low[0].max() == 0  # padding rows carry nothing
    assert content_region(low, "letterbox", info).shape == (info.height, info.width)
    back = undo_resize(low, "letterbox", photo.shape[:2], info)
    assert back.shape == photo.shape[:2]
    assert np.abs((back >= 0.5) != (mask > 0)).mean() < 0.02
    res = postprocess(low, None, photo, spec, letterbox=info)
    assert res.alpha_png.shape == photo.shape[:2]
    assert np.abs((res.alpha_png >= 128) != (mask > 0)).mean() < 0.01
    with pytest.raises(ValueError, match="LetterboxInfo"):
        postprocess(low, None, photo, spec)


def test_stretch_and_bad_inputs() -> None:
    photo, mask = blob_photo()
    low = cv2.resize(mask.astype(np.float32) / 255, (64, 64), interpolation=cv2.INTER_AREA)
    assert content_region(low, "stretch") is low
    res = postprocess(low[None, None], None, photo, make_spec(), upsample="bilinear")
    assert res.alpha_full.dtype == np.float32 and res.alpha_png.dtype == np.uint8
    assert np.array_equal(res.alpha_png, np.round(res.alpha_full * 255).astype(np.uint8))
    assert set(res.timings) >= {"upsample", "instances", "total"}
    with pytest.raises(ValueError, match="NaN"):
        postprocess(np.full((64, 64), np.nan, np.float32), None, photo, make_spec())
    with pytest.raises(ValueError, match="photo"):
        postprocess(low, None, photo[..., 0], make_spec())
