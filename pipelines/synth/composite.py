"""Cut-and-paste composites of real foregrounds onto other backgrounds, with exact masks.

Why hard (binary) pasting: the ground-truth mask must equal the composited alpha *exactly* —
mask > 0 precisely where a foreground pixel was written and is still visible. Any feathering would
make the label ambiguous at the border, which is exactly where subject-lifting models are judged.
Several subjects are pasted bottom to top; each instance mask keeps only what is left visible after
the subjects above it, so instance masks are disjoint and their union is the item mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from pipelines.masks import gt_foreground


@dataclass(frozen=True)
class Jitter:
    """Random variation applied to each pasted foreground (all ranges are uniform).

    ``scale`` is the subject's bounding-box height as a share of the canvas height; a subject is
    also capped at ``max_width`` of the canvas width so it always fits. Colour jitter is mild on
    purpose: it decorrelates subject colour from the source photo without making it unnatural.
    Setting every colour term to 0 and ``flip`` to 0 gives a pure resize-and-paste.
    """

    scale: tuple[float, float] = (0.4, 0.85)
    max_width: float = 0.9
    flip: float = 0.5
    brightness: float = 0.15
    contrast: float = 0.15
    saturation: float = 0.2
    white_balance: float = 0.05
    position: tuple[float, float] | None = None  # fixed bbox centre (x, y) as canvas shares
    min_visible: float = 0.3  # drop a subject when less than this share of it stays visible


@dataclass
class CompositeResult:
    """A composited image, its item mask, and one visible-part mask per kept subject."""

    image: np.ndarray  # HxWx3 uint8 RGB
    mask: np.ndarray  # HxW uint8, 0 / 255
    instances: list[np.ndarray] = field(default_factory=list)  # HxW bool, paste order
    kept: list[int] = field(default_factory=list)  # indices of input subjects that were kept


@dataclass
class _Layer:
    x: int
    y: int
    rgb: np.ndarray  # h x w x 3
    alpha: np.ndarray  # h x w bool


def as_bool_mask(mask: np.ndarray) -> np.ndarray:
    """Boolean view of a mask given as bool, 0/1 or 0/255 (values > 127 are foreground)."""
    if mask.dtype == bool:
        return mask
    if mask.ndim == 3:
        mask = mask[..., 0]
    return gt_foreground(mask) if int(mask.max(initial=0)) > 1 else mask > 0


def cut_foreground(fg: np.ndarray, fg_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop an image and its boolean mask to the mask's bounding box; ValueError when empty."""
    m = as_bool_mask(fg_mask)
    if m.shape != fg.shape[:2]:
        raise ValueError(f"mask shape {m.shape} does not match image shape {fg.shape[:2]}")
    ys, xs = np.nonzero(m)
    if ys.size == 0:
        raise ValueError("foreground mask is empty: nothing to paste")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return fg[y0:y1, x0:x1], m[y0:y1, x0:x1]


def jitter_colour(
    rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator, j: Jitter
) -> np.ndarray:
    """Brightness/contrast/saturation/white-balance jitter, centred on the subject's own mean."""
    gain = 1.0 + rng.uniform(-j.brightness, j.brightness)
    con = 1.0 + rng.uniform(-j.contrast, j.contrast)
    sat = 1.0 + rng.uniform(-j.saturation, j.saturation)
    wb = 1.0 + rng.uniform(-j.white_balance, j.white_balance, 3)
    if j.brightness == j.contrast == j.saturation == j.white_balance == 0:
        return rgb
    f = rgb.astype(np.float32)
    mean = f[mask].mean() if mask.any() else f.mean()
    f = (f - mean) * con + mean
    f *= gain
    grey = f @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    f = grey[..., None] + (f - grey[..., None]) * sat
    f *= wb.astype(np.float32)
    return np.clip(np.round(f), 0, 255).astype(np.uint8)


def _resize_pair(rgb: np.ndarray, m: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    shrink = w * h < rgb.shape[0] * rgb.shape[1]
    img = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    # Bilinear + 0.5 threshold: smooth edges when enlarging 8x (phone resolution), unlike nearest.
    alpha = cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
    if not alpha.any():
        alpha = cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    if not alpha.any():
        alpha[h // 2, w // 2] = True  # a sub-pixel subject still occupies one pixel
    return img, alpha


def _make_layer(
    fg: np.ndarray,
    fg_mask: np.ndarray,
    canvas_hw: tuple[int, int],
    rng: np.random.Generator,
    j: Jitter,
) -> _Layer:
    crop, m = cut_foreground(fg, fg_mask)
    H, W = canvas_hw
    crop = jitter_colour(crop, m, rng, j)
    if rng.random() < j.flip:
        crop, m = crop[:, ::-1], m[:, ::-1]
    frac = rng.uniform(*j.scale)
    sc = min(H * frac / crop.shape[0], W * j.max_width / crop.shape[1])
    w = int(min(W, max(1, round(crop.shape[1] * sc))))
    h = int(min(H, max(1, round(crop.shape[0] * sc))))
    img, alpha = _resize_pair(np.ascontiguousarray(crop), np.ascontiguousarray(m), w, h)
    if j.position is None:
        x = int(rng.integers(0, W - w + 1))
        y = int(rng.integers(0, H - h + 1))
    else:
        x = int(np.clip(round(j.position[0] * W - w / 2), 0, W - w))
        y = int(np.clip(round(j.position[1] * H - h / 2), 0, H - h))
    return _Layer(x, y, img, alpha)


def _full(layer: _Layer, hw: tuple[int, int]) -> np.ndarray:
    full = np.zeros(hw, dtype=bool)
    h, w = layer.alpha.shape
    full[layer.y : layer.y + h, layer.x : layer.x + w] = layer.alpha
    return full


def composite_subjects(
    subjects: Sequence[tuple[np.ndarray, np.ndarray]],
    bg: np.ndarray,
    rng: np.random.Generator,
    **jitter: object,
) -> CompositeResult:
    """Paste several (image, mask) foregrounds onto ``bg`` in order (later ones occlude earlier).

    A subject left with less than ``min_visible`` of its area visible is dropped *before* pasting,
    so no instance is a sliver and the image never shows pixels of a subject that has no instance.
    """
    j = Jitter(**jitter)  # type: ignore[arg-type]
    if not subjects:
        raise ValueError("composite_subjects needs at least one subject")
    hw = (bg.shape[0], bg.shape[1])
    layers = [_make_layer(fg, m, hw, rng, j) for fg, m in subjects]
    fulls = [_full(layer, hw) for layer in layers]
    covered = np.zeros(hw, dtype=bool)
    keep: list[int] = []
    for k in range(len(layers) - 1, -1, -1):  # top-down: visibility depends only on what is above
        area = int(fulls[k].sum())
        visible = int((fulls[k] & ~covered).sum())
        if visible > 0 and (not keep or visible >= j.min_visible * area):
            keep.append(k)
            covered |= fulls[k]
    keep.reverse()
    out = bg.copy()
    for k in keep:
        layer = layers[k]
        h, w = layer.alpha.shape
        region = out[layer.y : layer.y + h, layer.x : layer.x + w]
        region[layer.alpha] = layer.rgb[layer.alpha]
    instances: list[np.ndarray] = []
    above = np.zeros(hw, dtype=bool)
    for k in reversed(keep):
        instances.append(fulls[k] & ~above)
        above |= fulls[k]
    instances.reverse()
    mask = np.where(above, 255, 0).astype(np.uint8)
    return CompositeResult(out, mask, instances, keep)


def composite(
    fg: np.ndarray,
    fg_mask: np.ndarray,
    bg: np.ndarray,
    rng: np.random.Generator,
    **jitter: object,
) -> tuple[np.ndarray, np.ndarray]:
    """Paste one foreground (cut by its mask) onto ``bg``; returns (RGB image, 0/255 mask).

    Pure: inputs are not modified, and the result depends only on the inputs and ``rng``'s state.
    ``jitter`` keywords are the fields of :class:`Jitter` (e.g. ``scale=(0.5, 0.5), flip=0``).
    """
    res = composite_subjects([(fg, fg_mask)], bg, rng, **jitter)
    return res.image, res.mask
