"""Decode a photo the way every runner expects it: RGB uint8, EXIF orientation applied.

Why EXIF: phone photos store pixels sideways plus an orientation tag; the contract's outputs are
"at the image's original size after EXIF orientation", so decoding must apply it before the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps


def load_image_rgb(path: str | Path | IO[bytes]) -> np.ndarray:
    """H×W×3 uint8 RGB array of the upright photo (alpha channels dropped, greyscale expanded)."""
    with Image.open(path) as im:
        upright = ImageOps.exif_transpose(im) or im
        return np.asarray(upright.convert("RGB"), dtype=np.uint8).copy()
