"""Background preparation: output size, crops that avoid salient objects, luminance targets.

Why: a background photo from a saliency dataset contains a salient object of its own; pasting a new
subject next to it would make the ground-truth mask wrong (two salient things, one labelled). So
backgrounds are cropped *outside* the dilated mask and any remaining object pixels are inpainted.
Luminance rescaling lets the people generator give every skin tone the same background-luminance
distribution.
"""

from __future__ import annotations

import cv2
import numpy as np

from .monk import lstar

#: Long side of "natural size" outputs; matches the saliency datasets (≤ 500 px) with headroom.
NATURAL_LONG_SIDE = 640
#: Dilation of a background's salient mask before cropping, as a share of the image diagonal:
#: 2.5 % keeps soft object borders (hair, shadows) that the binary mask misses out of the crop.
DILATE_FRAC = 0.025
#: Candidate crop scales (share of the largest aspect-matched crop), largest first.
CROP_SCALES = (1.0, 0.85, 0.7, 0.55, 0.45, 0.35)
#: Positions tried per scale. Measured on 150 sod backgrounds: 12 tries left 18 % of the crop to
#: inpaint on average, 64 tries 10 %, 200 tries 8 %; 64 costs ~2 ms per background.
CROP_TRIES = 64
#: Penalty per unit of lost scale, so a slightly larger overlap is preferred to a tiny crop.
SCALE_PENALTY = 0.15
#: Long side at which holes are inpainted (see :func:`inpaint`).
INPAINT_SIDE = 160


def natural_size(shape: tuple[int, ...]) -> tuple[int, int]:
    """(W, H) of an image capped so its long side is ≤ NATURAL_LONG_SIDE (aspect kept)."""
    h, w = shape[0], shape[1]
    s = min(1.0, NATURAL_LONG_SIDE / max(h, w))
    return max(1, round(w * s)), max(1, round(h * s))


def resize_to(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an RGB image to (W, H) with area averaging when shrinking, bilinear when enlarging."""
    w, h = size
    if (rgb.shape[1], rgb.shape[0]) == (w, h):
        return rgb.copy()
    shrink = w * h < rgb.shape[0] * rgb.shape[1]
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def dilate(mask: np.ndarray, frac: float = DILATE_FRAC) -> np.ndarray:
    """Boolean dilation by ``frac`` of the diagonal (L2 distance transform: O(N) for any radius)."""
    if not mask.any():
        return mask.copy()
    r = frac * float(np.hypot(*mask.shape[:2]))
    dist = cv2.distanceTransform(np.where(mask, 0, 255).astype(np.uint8), cv2.DIST_L2, 3)
    return dist <= r


def _full_crop(shape: tuple[int, ...], aspect: float) -> tuple[float, float]:
    """(w, h) of the largest crop of aspect W/H that fits in an image of ``shape``."""
    h_img, w_img = shape[0], shape[1]
    if w_img / h_img > aspect:
        return h_img * aspect, float(h_img)
    return float(w_img), w_img / aspect


def _best_crop(
    blocked: np.ndarray, aspect: float, rng: np.random.Generator
) -> tuple[int, int, int, int, float]:
    """Pick (x, y, w, h, blocked share) of an aspect-matched crop with little blocked area."""
    h_img, w_img = blocked.shape
    integral = cv2.integral(blocked.astype(np.uint8))  # (h+1, w+1) int32
    full_w, full_h = _full_crop(blocked.shape, aspect)
    best: tuple[float, tuple[int, int, int, int, float]] | None = None
    for s in CROP_SCALES:
        cw, ch = max(1, int(full_w * s)), max(1, int(full_h * s))
        xs = rng.integers(0, w_img - cw + 1, CROP_TRIES)
        ys = rng.integers(0, h_img - ch + 1, CROP_TRIES)
        sums = (
            integral[ys + ch, xs + cw]
            - integral[ys, xs + cw]
            - integral[ys + ch, xs]
            + integral[ys, xs]
        )
        fracs = sums / float(cw * ch)
        i = int(np.argmin(fracs))
        score = float(fracs[i]) + SCALE_PENALTY * (1.0 - s)
        if best is None or score < best[0]:
            best = (score, (int(xs[i]), int(ys[i]), cw, ch, float(fracs[i])))
        if fracs[i] == 0.0:
            break  # the largest clean crop wins; smaller scales can only score worse
    assert best is not None
    return best[1]


def background_crop(
    rgb: np.ndarray,
    mask: np.ndarray | None,
    size: tuple[int, int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, float]:
    """Crop a background to (W, H) avoiding its salient object; returns (image, inpainted share).

    With a mask, the crop minimises overlap with the dilated mask and what overlap remains is filled
    by ``cv2.inpaint`` (Telea), at the source resolution so the cost does not grow with ``size``.
    Without a mask, a random large crop (70-100 %) is taken: the folder promises no salient object.
    """
    w, h = size
    aspect = w / h
    if mask is None or not mask.any():
        full_w, full_h = _full_crop(rgb.shape, aspect)
        s = float(rng.uniform(0.7, 1.0))  # every position is clean; vary the framing a little
        cw, ch = max(1, int(full_w * s)), max(1, int(full_h * s))
        x = int(rng.integers(0, rgb.shape[1] - cw + 1))
        y = int(rng.integers(0, rgb.shape[0] - ch + 1))
        return resize_to(rgb[y : y + ch, x : x + cw], size), 0.0
    blocked = dilate(mask)
    x, y, cw, ch, frac = _best_crop(blocked, aspect, rng)
    crop = np.ascontiguousarray(rgb[y : y + ch, x : x + cw])
    hole = blocked[y : y + ch, x : x + cw]
    if hole.any():
        crop = inpaint(crop, hole)
    return resize_to(crop, size), frac


def inpaint(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill ``hole`` pixels with ``cv2.inpaint`` (Telea) run at ≤ INPAINT_SIDE px, then upsampled.

    Telea's cost grows with hole area x radius²; at the source resolution it took ~45 ms per sod
    background (most of a 200-item run). Large holes get a smooth fill either way, so solving at low
    resolution loses nothing visible; pixels outside the hole are left untouched.
    """
    h, w = hole.shape
    s = min(1.0, INPAINT_SIDE / max(h, w))
    sw, sh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    # Any coverage counts as hole, so no object colour leaks into the low-resolution source pixels.
    small_hole = cv2.resize(hole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 0
    filled = cv2.inpaint(small, small_hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    up = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    out = rgb.copy()
    out[hole] = up[hole]
    return out


def _gamma_lut(g: float) -> np.ndarray:
    return np.clip(np.round(255.0 * (np.arange(256) / 255.0) ** g), 0, 255).astype(np.uint8)


def rescale_luminance(rgb: np.ndarray, target_lstar: float, iters: int = 24) -> np.ndarray:
    """Per-channel gamma so the image's mean L* is ``target_lstar`` (as close as 8 bits allow).

    Gamma (not a gain) maps 0→0 and 255→255, so nothing clips and hue is roughly kept; mean L* is
    monotone in the exponent, so bisection converges. The search runs on a strided subsample (which
    keeps the pixel distribution, unlike area averaging), the result is applied with a LUT.
    """
    step = max(1, int(max(rgb.shape[:2]) // 128))  # ~10k pixels: mean L* within ~0.3 of full
    sample = np.ascontiguousarray(rgb[::step, ::step])
    lo, hi = -3.0, 3.0  # log-exponent range: gamma 0.05 … 20
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        m = float(lstar(cv2.LUT(sample, _gamma_lut(float(np.exp(mid))))).mean())
        if m > target_lstar:
            lo = mid  # too bright: larger exponent darkens
        else:
            hi = mid
    return cv2.LUT(rgb, _gamma_lut(float(np.exp(0.5 * (lo + hi)))))
