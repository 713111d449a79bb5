"""Undo the spec's input resize: map the model's alpha back onto the photo's field of view.

``stretch`` resized the whole photo to the model size, so the whole alpha maps back to the whole
photo. ``letterbox`` kept the aspect ratio and padded; only the box where the photo was placed is
the photo, the padding is discarded. The box geometry is defined once, in :mod:`pipelines.spec`
(``resize_for_spec`` returns a :class:`~pipelines.spec.LetterboxInfo`, ``crop_letterbox`` cuts it
out), and reused here so pre- and post-processing cannot drift apart.
"""

from __future__ import annotations

import numpy as np

from pipelines.spec import LetterboxInfo, crop_letterbox

from . import guided


def content_region(
    alpha_lowres: np.ndarray, mode: str, info: LetterboxInfo | None = None
) -> np.ndarray:
    """The part of the model's alpha that covers the photo, still at model resolution.

    ``stretch``: all of it (``info`` optional). ``letterbox``: the photo's box, which needs the
    ``LetterboxInfo`` preprocessing returned (runners put it in ``RawOutput.letterbox``). This is
    what the guided upsampling starts from.
    """
    if mode == "stretch":
        return alpha_lowres if info is None else crop_letterbox(alpha_lowres, info)
    if mode == "letterbox":
        if info is None:
            raise ValueError("a letterbox spec needs the LetterboxInfo from preprocessing")
        return crop_letterbox(alpha_lowres, info)
    raise ValueError(f"resize must be 'stretch' or 'letterbox', got {mode!r}")


def undo_resize(
    alpha_lowres: np.ndarray,
    mode: str,
    photo_hw: tuple[int, int],
    info: LetterboxInfo | None = None,
) -> np.ndarray:
    """Plain (bilinear) inverse of the spec's resize: float32 alpha at ``photo_hw``, clipped.

    Same result as :func:`pipelines.spec.undo_letterbox` (area average instead when the photo is
    smaller than the box); post-processing uses :func:`content_region` + guided upsampling instead.
    """
    return guided.bilinear_upsample(content_region(alpha_lowres, mode, info), photo_hw)
