"""Monk Skin Tone swatches, label vocabularies and luminance/contrast measures.

Why this module exists: a fairness gap by skin tone is only meaningful when the generator does not
hand some tones an easier (higher-contrast, brighter) background than others. Everything needed to
*measure* that — CIE L*, relative luminance, WCAG and Michelson contrast between a subject and the
ring of background around it — lives here, next to the swatches, so the generator and the tests use
the same definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: sRGB hex values of the 10 Monk Skin Tone (MST) swatches, tone 1 (lightest) … 10 (darkest).
MONK_HEX: dict[int, str] = {
    1: "#f6ede4",
    2: "#f3e7db",
    3: "#f7ead0",
    4: "#eadaba",
    5: "#d7bd96",
    6: "#a07e56",
    7: "#825c43",
    8: "#604134",
    9: "#3a312a",
    10: "#292420",
}

# Vocabularies from contracts/platform.md; the manifest must only ever contain these strings.
SKIN_TONES: tuple[str, ...] = tuple(str(t) for t in range(1, 11))
SKIN_TONE_VALUES: frozenset[str] = frozenset(SKIN_TONES) | {"not_applicable", "unknown"}
GENDERS: tuple[str, ...] = ("woman", "man", "other")
GENDER_VALUES: frozenset[str] = frozenset(GENDERS) | {"not_applicable", "unknown"}


def monk_rgb(tone: int) -> tuple[int, int, int]:
    """Return the sRGB (R, G, B) triple of Monk tone 1…10; raises ValueError outside the scale."""
    if tone not in MONK_HEX:
        raise ValueError(f"Monk skin tone must be 1..10, got {tone!r}")
    h = MONK_HEX[tone].lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _srgb_to_linear_lut() -> np.ndarray:
    c = np.arange(256, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return lin.astype(np.float32)


# A 256-entry table is exact for 8-bit input and ~10x faster than evaluating the power law per
# pixel, which matters at 12 MP (phone resolution).
_LIN = _srgb_to_linear_lut()
_REC709 = (0.2126, 0.7152, 0.0722)


def relative_luminance(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel relative luminance Y in [0, 1] (WCAG / Rec. 709 weights) of an RGB uint8 image."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError("relative_luminance expects an HxWx3 uint8 RGB image")
    y = _LIN[rgb[..., 0]] * _REC709[0]
    y += _LIN[rgb[..., 1]] * _REC709[1]
    y += _LIN[rgb[..., 2]] * _REC709[2]
    return y


def lstar_from_y(y: np.ndarray | float) -> np.ndarray:
    """CIE L* (0…100) from relative luminance Y (D65 white = 1)."""
    y_arr = np.asarray(y, dtype=np.float32)
    f = np.where(y_arr > 216 / 24389, np.cbrt(y_arr), y_arr * (24389 / 27 / 116) + 16 / 116)
    return (116.0 * f - 16.0).astype(np.float32)


def lstar(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel CIE L* of an RGB uint8 image."""
    return lstar_from_y(relative_luminance(rgb))


def wcag_ratio(y1: float, y2: float) -> float:
    """WCAG 2.x contrast ratio (1…21) between two relative luminances."""
    hi, lo = max(y1, y2), min(y1, y2)
    return float((hi + 0.05) / (lo + 0.05))


def michelson(y1: float, y2: float) -> float:
    """Michelson contrast (0…1) between two luminances; 0 when both are black (degenerate case)."""
    s = y1 + y2
    return float(abs(y1 - y2) / s) if s > 0 else 0.0


@dataclass(frozen=True)
class ContrastStats:
    """Subject/background contrast of one composited item (all L* values are per-pixel means).

    ``ring_lstar`` is measured on a band of background around the subject, because that is what a
    segmentation model has to separate the subject from; ``bg_lstar`` is the whole background.
    """

    subject_lstar: float
    ring_lstar: float
    bg_lstar: float
    delta_lstar: float
    wcag: float
    michelson: float


def ring_width(shape: tuple[int, ...]) -> int:
    """Band width around the subject used for contrast: 3 % of the short side (≥ 2 px).

    Proportional to image size, so a composite at 640 px and at 3024x4032 measures the same ring.
    """
    return max(2, round(0.03 * min(shape[0], shape[1])))


def contrast_stats(rgb: np.ndarray, mask: np.ndarray) -> ContrastStats | None:
    """Contrast between the subject (mask > 0) and the background ring around it; None if undefined.

    Undefined means an empty mask (no subject) or a subject covering the whole image (no ring).
    """
    fg = mask > 0
    if not fg.any() or fg.all():
        return None
    y = relative_luminance(rgb)
    ls = lstar_from_y(y)
    # Distance to the nearest subject pixel; L2 distance transform is O(N), a big elliptic dilation
    # at 12 MP is not.
    dist = cv2.distanceTransform(np.where(fg, 0, 255).astype(np.uint8), cv2.DIST_L2, 3)
    ring = (~fg) & (dist <= ring_width(mask.shape))
    if not ring.any():
        ring = ~fg
    bg = ~fg
    y_s, y_r = float(y[fg].mean()), float(y[ring].mean())
    l_s, l_r = float(ls[fg].mean()), float(ls[ring].mean())
    return ContrastStats(
        subject_lstar=l_s,
        ring_lstar=l_r,
        bg_lstar=float(ls[bg].mean()),
        delta_lstar=abs(l_s - l_r),
        wcag=wcag_ratio(y_s, y_r),
        michelson=michelson(y_s, y_r),
    )


def mean_lstar(rgb: np.ndarray, where: np.ndarray | None = None) -> float:
    """Mean per-pixel L* of an image, optionally restricted to a boolean mask."""
    ls = lstar(rgb)
    if where is None:
        return float(ls.mean())
    return float(ls[where].mean()) if where.any() else float("nan")
