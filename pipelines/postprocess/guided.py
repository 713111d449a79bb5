"""Content-aware upsampling of a low-resolution alpha to the photo's size (fast guided filter).

Why: a model sees the photo at 512×512, so its alpha cannot carry a 12 MP photo's edges; bilinear
upsampling gives soft, blocky borders. The guided filter (He, Sun & Tang 2010) fits, in every
window, a linear model ``q = a·I + b`` from the photo ``I`` to the alpha ``p``, so the output
follows the photo's edges. The *fast* guided filter (He & Sun 2015, arXiv 1505.00996) fits ``a``
and ``b`` on the low-resolution grid (guide downsampled to the alpha's size), upsamples the two
smooth coefficient maps bilinearly and applies ``q = a·I + b`` once at full resolution. All box
filters run on ~0.26 MP instead of 12 MP; the full-resolution work is one bilinear resize per
coefficient map plus one multiply-add per channel (measured in ``bench/upsample.py``).

Conventions (shared by :func:`guided_filter` and :func:`fast_guided_upsample`):

- The guide is scaled to [0, 1] (uint8 / 255), so ``eps`` is in those units (a variance:
  ``eps = σ²`` means edges with a local standard deviation well below σ are smoothed over).
- Box filters use ``cv2.BORDER_REFLECT`` (``edcb|abcd``), the border OpenCV's own
  ``cv2.ximgproc.guidedFilter`` uses; every window has the full (2r+1)² size.
- ``radius`` is in pixels of the grid the coefficients are fitted on (the "work grid"): the alpha's
  grid for photos larger than the alpha, the photo's own grid for smaller photos.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

#: Window radius in work-grid (≈ 512 px) pixels. Chosen on ``bench/upsample.py`` (12 MP composites
#: with 1–3 px hair strands; eps 1e-4; boundary F at the contract's 38 px tolerance / at 2 px):
#: r = 2 scored 0.964 / 0.918 on hard-edged composites and 0.958 / 0.879 on camera-soft ones; r = 1
#: is close (0.968 / 0.897, 0.956 / 0.868), r ≥ 4 lets windows span thin strands and falls off
#: (r = 8: 0.955 / 0.916, 0.949 / 0.871).
DEFAULT_RADIUS = 2
#: Regularisation (guide in [0, 1]): σ = 0.01, about 2.5 grey levels of local contrast. On the same
#: bench 1e-4 beats 1e-3 (boundary F 0.964 vs 0.928 hard-edged, 0.958 vs 0.920 soft) and 1e-2
#: (0.850), which degenerate towards a box blur where contrast is modest. 1e-5 scored higher still
#: (0.984 / 0.977), but the bench's subjects are flat-coloured, so nothing inside them can be copied
#: into the alpha; on textured subjects (patterned clothes, hair sheen) a smaller eps follows
#: texture as if it were an edge, so we keep the conventional 1e-4 until a real-photo set says
#: otherwise (the parameter is exposed end to end).
DEFAULT_EPS = 1e-4

Method = Literal["guided", "bilinear"]
_BORDER = cv2.BORDER_REFLECT


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Normalised (2r+1)² box mean, float32 in and out."""
    k = 2 * radius + 1
    return cv2.blur(x, (k, k), borderType=_BORDER)


def _as_unit_float(guide: np.ndarray) -> np.ndarray:
    """Guide as float32 in [0, 1]: uint8 is divided by 255, floats are taken as already scaled."""
    if guide.dtype == np.uint8:
        return guide.astype(np.float32) * np.float32(1.0 / 255.0)
    return guide.astype(np.float32, copy=False)


def _clamp_radius(radius: int, shape: tuple[int, ...]) -> int:
    """Keep the window inside one reflection of the image (tiny images, e.g. 1×N, stay valid)."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    return min(radius, max(0, min(shape[0], shape[1]) - 1))


def coefficients_grey(
    guide: np.ndarray, src: np.ndarray, radius: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean linear coefficients (ā, b̄) of the grey guided filter, both HxW float32.

    ``guide`` HxW float32 in [0, 1], ``src`` HxW float32. ā = box(cov(I, p) / (var(I) + eps)),
    b̄ = box(mean(p) − a·mean(I)); the filter output is ``ā·I + b̄``.
    """
    r = _clamp_radius(radius, guide.shape)
    # One multi-channel blur for the four first/second moments (one pass instead of four).
    stack = cv2.merge([guide, src, guide * guide, guide * src])
    mean_i, mean_p, corr_ii, corr_ip = cv2.split(_box(stack, r))
    var_i = np.maximum(corr_ii - mean_i * mean_i, 0)  # float32 moments can undershoot 0
    cov_ip = corr_ip - mean_i * mean_p
    a = cov_ip / (var_i + np.float32(eps))
    b = mean_p - a * mean_i
    mean_a, mean_b = cv2.split(_box(cv2.merge([a, b]), r))
    return mean_a, mean_b


def _solve_spd3(
    s: dict[tuple[int, int], np.ndarray], c: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve S·a = c per pixel for symmetric positive-definite 3×3 S (entries ``s[i, j]``, i ≤ j).

    Cholesky (S = L·Lᵀ) written out on whole arrays, in float32. Why not the adjugate/determinant
    closed form: with a near-grey edge the colour covariance is almost singular (R, G, B move
    together), and the determinant's float32 cancellation error exceeded the determinant itself
    at eps 1e-5 — wrong signs, garbage alpha. Cholesky's error is relative to ‖S‖, not to det S,
    and costs no more than the adjugate (float64 would double the low-resolution time).
    """
    tiny = np.float32(1e-12)  # S ≥ eps·U in exact arithmetic; this only guards rounding
    # Every step is the same float32 operation in the same order as the textbook formulas
    # (l22 = √max(s11 − l21², tiny), …); results go into the step's own temporary (out=) instead
    # of a fresh array per operation: identical bits, ~10 % less post-processing time.
    l11 = np.sqrt(np.maximum(s[0, 0], tiny))
    l21 = s[0, 1] / l11
    l31 = s[0, 2] / l11
    l22 = s[1, 1] - l21 * l21
    np.sqrt(np.maximum(l22, tiny, out=l22), out=l22)
    l32 = s[1, 2] - l31 * l21
    l32 /= l22
    l33 = s[2, 2] - l31 * l31
    l33 -= l32 * l32
    np.sqrt(np.maximum(l33, tiny, out=l33), out=l33)
    y1 = c[0] / l11  # forward substitution L·y = c
    y2 = c[1] - l21 * y1
    y2 /= l22
    y3 = c[2] - l31 * y1
    y3 -= l32 * y2
    y3 /= l33
    a3 = y3 / l33  # back substitution Lᵀ·a = y
    a2 = y2 - l32 * a3
    a2 /= l22
    a1 = y1 - l21 * a2
    a1 -= l31 * a3
    a1 /= l11
    return a1, a2, a3


def coefficients_colour(
    guide: np.ndarray, src: np.ndarray, radius: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean coefficients of the colour guided filter: ā HxWx3 and b̄ HxW, float32.

    Per window: a = (Σ + eps·U)⁻¹ · cov(I, p) with Σ the 3×3 colour covariance and
    b = mean(p) − aᵀ·mean(I).
    The 3×3 systems are solved on whole arrays (:func:`_solve_spd3`) — no per-pixel
    ``np.linalg`` calls, which were the bottleneck of naive implementations.
    """
    r = _clamp_radius(radius, guide.shape)
    g = [np.ascontiguousarray(guide[..., c]) for c in range(3)]
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    # One box filter per plane: the same sums as one 13-channel blur (a box filter never mixes
    # channels), without merging 13 planes into one image and splitting them again, which cost
    # as much as the filtering (measured: 14 vs 24 ms per 500×333 photo, identical output).
    planes = [*g, src, *(g[i] * g[j] for i, j in pairs), *(g[c] * src for c in range(3))]
    m = [_box(plane, r) for plane in planes]
    mean_i, mean_p = m[0:3], m[3]
    s = {}
    for k, (i, j) in enumerate(pairs):
        s[i, j] = m[4 + k] - mean_i[i] * mean_i[j]
        if i == j:  # a variance: never below 0 (float32 moments can undershoot), then + eps
            s[i, j] = np.maximum(s[i, j], 0) + np.float32(eps)
    cov = [m[10 + c] - mean_i[c] * mean_p for c in range(3)]
    a_r, a_g, a_b = _solve_spd3(s, cov)
    b = mean_p - a_r * mean_i[0] - a_g * mean_i[1] - a_b * mean_i[2]
    return np.dstack([_box(a, r) for a in (a_r, a_g, a_b)]), _box(b, r)


def _coefficients(
    guide_unit: np.ndarray, src: np.ndarray, radius: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    if guide_unit.ndim == 2:
        return coefficients_grey(guide_unit, src, radius, eps)
    if guide_unit.ndim == 3 and guide_unit.shape[2] == 3:
        return coefficients_colour(guide_unit, src, radius, eps)
    raise ValueError(f"guide must be HxW or HxWx3, got shape {guide_unit.shape}")


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """The standard guided filter at one resolution (the fast filter with s = 1), float32 HxW.

    ``guide`` HxW or HxWx3 (uint8, or float in [0, 1]); ``src`` HxW. Not clipped: this is the
    textbook filter, used for tests and as a building block.
    """
    g = _as_unit_float(guide)
    p = src.astype(np.float32, copy=False)
    if g.shape[:2] != p.shape[:2]:
        raise ValueError(f"guide {g.shape[:2]} and src {p.shape[:2]} differ in size")
    mean_a, mean_b = _coefficients(g, p, radius, eps)
    if g.ndim == 2:
        return mean_a * g + mean_b
    return np.einsum("hwc,hwc->hw", mean_a, g).astype(np.float32) + mean_b


def _resize(x: np.ndarray, hw: tuple[int, int], interpolation: int) -> np.ndarray:
    if x.shape[:2] == hw:
        return x
    return cv2.resize(x, (hw[1], hw[0]), interpolation=interpolation)


def _shrink(x: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Anti-aliased downsample to ``hw`` (so the guide looks like what the model saw).

    Halving with ``cv2.pyrDown`` (Gaussian 5×5, then decimate) while at least 4× too large, then
    an area average: an anti-aliased result comparable to one INTER_AREA resize from 12 MP (which
    has no fast path for non-integer factors) in about half the time (measured 27 vs 47 ms).
    """
    while x.shape[0] >= 4 * hw[0] and x.shape[1] >= 4 * hw[1]:
        x = cv2.pyrDown(x)
    return _resize(x, hw, cv2.INTER_AREA)


def bilinear_upsample(alpha: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Plain bilinear resize to ``size_hw`` (area average when shrinking), clipped, float32."""
    a = alpha.astype(np.float32, copy=False)
    grow = size_hw[0] >= a.shape[0] and size_hw[1] >= a.shape[1]
    out = _resize(a, size_hw, cv2.INTER_LINEAR if grow else cv2.INTER_AREA)
    return np.clip(out, 0.0, 1.0, out=out if out is not a else None)


def _apply_full(photo: np.ndarray, mean_a: np.ndarray, mean_b: np.ndarray) -> np.ndarray:
    """q = ā↑·I + b̄↑ at the photo's resolution, with the fewest full-resolution passes.

    ``mean_a`` was pre-divided by 255 so the uint8 photo is used as is (no 12 MP float copy of the
    guide); cv2.multiply mixes uint8 and float32 inputs in a single pass. Two scratch planes are
    reused for every channel: at 12 MP, fresh 48 MB outputs cost more in page faults than the
    arithmetic (measured: a bilinear resize into a reused buffer is ~3× faster).
    """
    hw = photo.shape[:2]
    dsize = (hw[1], hw[0])
    q = np.empty(hw, dtype=np.float32)
    cv2.resize(mean_b, dsize, dst=q, interpolation=cv2.INTER_LINEAR)
    planes = [photo] if photo.ndim == 2 else cv2.split(photo)
    up = np.empty(hw, dtype=np.float32)
    for c, plane in enumerate(planes):
        a_c = mean_a if mean_a.ndim == 2 else np.ascontiguousarray(mean_a[..., c])
        cv2.resize(a_c, dsize, dst=up, interpolation=cv2.INTER_LINEAR)
        cv2.multiply(plane, up, dst=up, dtype=cv2.CV_32F)
        cv2.add(q, up, dst=q)
    return q


def work_size(alpha_hw: tuple[int, int], photo_hw: tuple[int, int]) -> tuple[int, int]:
    """Grid the coefficients are fitted on: the alpha's, except where the photo is smaller.

    A photo smaller than the alpha (e.g. 300×400 vs 512×512) gets the same filter at its own
    resolution: the alpha is area-downsampled and the guide stays native, per axis.
    """
    return min(alpha_hw[0], photo_hw[0]), min(alpha_hw[1], photo_hw[1])


def fast_guided_upsample(
    alpha: np.ndarray,
    photo_rgb: np.ndarray,
    *,
    radius: int = DEFAULT_RADIUS,
    eps: float = DEFAULT_EPS,
    colour: bool = True,
) -> np.ndarray:
    """Upsample ``alpha`` (h×w, [0, 1]) to the photo's size guided by the photo; float32 in [0, 1].

    ``photo_rgb``: H×W×3 uint8 (or H×W uint8 grey). ``alpha`` must cover the same field of view as
    the photo (undo a letterbox first, see :mod:`pipelines.postprocess.resize`). ``colour=False``
    uses the grey guide (cheaper: one full-resolution plane instead of three, weaker on edges
    between colours of equal brightness).
    """
    if photo_rgb.dtype != np.uint8:
        raise ValueError(f"photo must be uint8, got {photo_rgb.dtype}")
    if alpha.ndim != 2:
        raise ValueError(f"alpha must be 2-D, got shape {alpha.shape}")
    photo = photo_rgb
    if photo.ndim == 3 and not colour:
        photo = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    hw = (int(photo.shape[0]), int(photo.shape[1]))
    grid = work_size((int(alpha.shape[0]), int(alpha.shape[1])), hw)
    p = _shrink(alpha.astype(np.float32, copy=False), grid)
    guide_low = _as_unit_float(_shrink(photo, grid))
    mean_a, mean_b = _coefficients(guide_low, p, radius, eps)
    mean_a *= np.float32(1.0 / 255.0)
    q = _apply_full(photo, mean_a, mean_b)
    return np.clip(q, 0.0, 1.0, out=q)


def upsample(
    alpha: np.ndarray,
    photo_rgb: np.ndarray,
    method: Method = "guided",
    *,
    radius: int = DEFAULT_RADIUS,
    eps: float = DEFAULT_EPS,
    colour: bool = True,
) -> np.ndarray:
    """Dispatch on ``method``: ``"guided"`` (fast guided filter) or ``"bilinear"``."""
    if method == "guided":
        return fast_guided_upsample(alpha, photo_rgb, radius=radius, eps=eps, colour=colour)
    if method == "bilinear":
        return bilinear_upsample(alpha, (int(photo_rgb.shape[0]), int(photo_rgb.shape[1])))
    raise ValueError(f"upsample must be 'guided' or 'bilinear', got {method!r}")
