"""The photo with one subject selected, as a user who taps a subject sees it.

Used by instance-lift rating tasks: the annotator must know which subject the two lifted
instances are meant to be, without seeing either model's output. The selected ground-truth
instance keeps its pixels, the rest of the photo is dimmed, and the instance is outlined.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Brightness kept outside the selected subject (dimmed, still recognisable as context).
DIM = 0.4
#: Outline colour (RGB): a saturated yellow reads on skin, hair, sky and foliage alike.
OUTLINE_RGB = (255, 214, 0)
#: Outline width as a share of the image's long side (3 px on a 1024 px web copy), at least 2 px.
OUTLINE_FRACTION = 0.003
JPEG_QUALITY = 88


def highlight_instance(photo_rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """H×W×3 uint8: ``photo_rgb`` dimmed outside ``mask`` (boolean or 0/255, any size: resized
    to the photo with nearest neighbour) and the mask's outline drawn on top."""
    if photo_rgb.ndim != 3 or photo_rgb.shape[2] != 3 or photo_rgb.dtype != np.uint8:
        raise ValueError(f"photo must be H×W×3 uint8, got {photo_rgb.shape} {photo_rgb.dtype}")
    h, w = photo_rgb.shape[:2]
    m = (np.asarray(mask) > 0).astype(np.uint8)
    if m.ndim != 2:
        raise ValueError(f"mask must be H×W, got {m.shape}")
    if m.shape != (h, w):
        m = np.asarray(cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST), dtype=np.uint8)
    out = (photo_rgb.astype(np.float32) * DIM).round().astype(np.uint8)
    out[m > 0] = photo_rgb[m > 0]
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    width = max(2, round(OUTLINE_FRACTION * max(h, w)))
    cv2.drawContours(out, contours, -1, OUTLINE_RGB, thickness=width, lineType=cv2.LINE_AA)
    return out


def jpeg_bytes(image_rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG of an RGB uint8 image: pixels only (no EXIF or other metadata)."""
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError(f"could not encode a {image_rgb.shape} image as JPEG")
    return bytes(buf.tobytes())
