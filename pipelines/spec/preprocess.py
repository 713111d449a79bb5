"""Turn a photo into the model input the spec describes, and map the model's alpha back.

Conventions (shared by every runner so cross-runtime parity compares like with like):

* resizing uses ``INTER_AREA`` when shrinking (what the reference training pipeline used; a 2x
  area shrink equals the bilinear 512→256 inside the reference net) and ``INTER_LINEAR`` when
  enlarging;
* ``letterbox`` keeps the aspect ratio, centres the photo and pads with zero *pixels* (black)
  before normalisation, so a Core ML image input, which only ever sees pixels, pads identically;
* the returned :class:`LetterboxInfo` is also produced for ``stretch`` (box = whole input), so
  post-processing can always call :func:`undo_letterbox`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipelines.spec.types import InputSpec, ModelSpec


@dataclass(frozen=True)
class LetterboxInfo:
    """Where the photo's content sits inside the model input (rows/cols in model pixels)."""

    top: int
    left: int
    height: int
    width: int
    input_size: tuple[int, int]  # model input (H, W)
    source_size: tuple[int, int]  # photo (H, W) before resizing


def _interp(src: tuple[int, int], dst: tuple[int, int]) -> int:
    shrinking = dst[0] * dst[1] < src[0] * src[1]
    return cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"expected an H×W×3 uint8 RGB image, got shape {image.shape} dtype {image.dtype}"
        )


def resize_for_spec(
    image_rgb_uint8: np.ndarray, spec: ModelSpec | InputSpec
) -> tuple[np.ndarray, LetterboxInfo]:
    """Resize an RGB uint8 photo to the spec size (stretch or letterbox); still RGB uint8."""
    _check_image(image_rgb_uint8)
    inp = spec.input if isinstance(spec, ModelSpec) else spec
    th, tw = inp.size
    sh, sw = image_rgb_uint8.shape[:2]
    if inp.resize == "stretch":
        out = cv2.resize(image_rgb_uint8, (tw, th), interpolation=_interp((sh, sw), (th, tw)))
        return out, LetterboxInfo(0, 0, th, tw, (th, tw), (sh, sw))
    ratio = min(th / sh, tw / sw)
    nh, nw = max(1, min(th, round(sh * ratio))), max(1, min(tw, round(sw * ratio)))
    resized = cv2.resize(image_rgb_uint8, (nw, nh), interpolation=_interp((sh, sw), (nh, nw)))
    top, left = (th - nh) // 2, (tw - nw) // 2
    canvas = np.zeros((th, tw, 3), np.uint8)
    canvas[top : top + nh, left : left + nw] = resized
    return canvas, LetterboxInfo(top, left, nh, nw, (th, tw), (sh, sw))


def normalise(resized_rgb_uint8: np.ndarray, spec: ModelSpec | InputSpec) -> np.ndarray:
    """``(x / scale - mean) / std`` in the spec's colour order and layout, batch of one, float32."""
    inp = spec.input if isinstance(spec, ModelSpec) else spec
    x = resized_rgb_uint8.astype(np.float32)
    if inp.color == "BGR":
        x = x[:, :, ::-1]
    mean = np.asarray(inp.mean, np.float32)
    std = np.asarray(inp.std, np.float32)
    x = (x / np.float32(inp.scale) - mean) / std
    if inp.layout == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None], dtype=np.float32)


def preprocess(
    image_rgb_uint8: np.ndarray, spec: ModelSpec | InputSpec
) -> tuple[np.ndarray, LetterboxInfo]:
    """Photo (H×W×3 RGB uint8) → model input (1×C×H×W float32, or 1×H×W×C for NHWC) + box."""
    resized, info = resize_for_spec(image_rgb_uint8, spec)
    return normalise(resized, spec), info


def undo_letterbox(alpha: np.ndarray, info: LetterboxInfo, size: tuple[int, int]) -> np.ndarray:
    """Crop the content box out of a model-size alpha and resize it to ``size`` (H, W), bilinear.

    This is the plain geometric inverse; content-aware upsampling (guided filter) lives in
    post-processing and can start from :func:`crop_letterbox` instead.
    """
    crop = crop_letterbox(alpha, info)
    h, w = size
    out = cv2.resize(crop.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0)


def crop_letterbox(alpha: np.ndarray, info: LetterboxInfo) -> np.ndarray:
    """The part of a model-size alpha (H×W) that covers the photo (identity for stretch)."""
    if alpha.shape[-2:] != info.input_size:
        raise ValueError(f"alpha has shape {alpha.shape}, expected {info.input_size}")
    a = alpha.reshape(info.input_size)
    return a[info.top : info.top + info.height, info.left : info.left + info.width]
