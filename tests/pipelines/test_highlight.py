"""The photo with one subject selected (instance-lift rating tasks)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipelines.postprocess.highlight import DIM, OUTLINE_RGB, highlight_instance, jpeg_bytes


def test_the_selected_subject_keeps_its_pixels_the_rest_is_dimmed_and_it_is_outlined():
    rng = np.random.default_rng(0)
    photo = rng.integers(40, 255, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((240, 320), bool)  # full resolution: twice the web copy
    mask[60:180, 80:200] = True
    out = highlight_instance(photo, mask)
    assert out.shape == photo.shape and out.dtype == np.uint8
    inner = (slice(40, 80), slice(50, 90))  # well inside the (downscaled) subject
    assert np.array_equal(out[inner], photo[inner])
    far = (slice(0, 10), slice(0, 10))
    expected = (photo[far].astype(np.float32) * DIM).round().astype(np.uint8)
    assert np.array_equal(out[far], expected)
    edge = out[30, 40:120]  # the subject's top edge in web coordinates
    assert (np.abs(edge.astype(int) - np.array(OUTLINE_RGB)).sum(axis=1) < 60).any()


def test_bad_inputs_are_refused_and_the_jpeg_carries_no_metadata():
    with pytest.raises(ValueError, match="photo must be"):
        highlight_instance(np.zeros((4, 4), np.uint8), np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="mask must be"):
        highlight_instance(np.zeros((4, 4, 3), np.uint8), np.ones((4, 4, 2), bool))
    data = jpeg_bytes(highlight_instance(np.full((8, 8, 3), 200, np.uint8), np.eye(8, dtype=bool)))
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG" and not img.info.get("exif")
