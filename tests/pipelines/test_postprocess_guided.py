"""Fast guided filter: agrees with a direct implementation and OpenCV; beats bilinear on strands."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines.metrics.functional import binary_boundary_f, binary_iou
from pipelines.postprocess import guided
from pipelines.postprocess.pipeline import to_png


def direct_guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Textbook guided filter written out window by window (float64, slow, for small images).

    For every window ω_k: a_k = (Σ_k + eps·U)⁻¹ cov_k(I, p), b_k = p̄_k − a_kᵀ Ī_k (least squares);
    q_i = mean over the windows containing i of a_kᵀ I_i + b_k. Borders reflect (``edcb|abcd``,
    np.pad's "symmetric"), the convention documented in ``pipelines.postprocess.guided``.
    """
    g = guide.astype(np.float64) / 255.0
    if g.ndim == 2:
        g = g[..., None]
    h, w, c = g.shape
    r, k = radius, 2 * radius + 1
    gp = np.pad(g, ((r, r), (r, r), (0, 0)), mode="symmetric")
    pp = np.pad(src.astype(np.float64), r, mode="symmetric")
    a = np.zeros((h, w, c))
    b = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            wi = gp[y : y + k, x : x + k].reshape(-1, c)
            wp = pp[y : y + k, x : x + k].reshape(-1)
            di, dp = wi - wi.mean(0), wp - wp.mean()
            ak = np.linalg.solve(di.T @ di / wp.size + eps * np.eye(c), di.T @ dp / wp.size)
            a[y, x], b[y, x] = ak, wp.mean() - ak @ wi.mean(0)
    ap = np.pad(a, ((r, r), (r, r), (0, 0)), mode="symmetric")
    bp = np.pad(b, r, mode="symmetric")
    q = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            mean_a = ap[y : y + k, x : x + k].reshape(-1, c).mean(0)
            q[y, x] = mean_a @ g[y, x] + bp[y : y + k, x : x + k].mean()
    return q


def _small_pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    photo = cv2.GaussianBlur((rng.random((26, 33, 3)) * 255).astype(np.uint8), (5, 5), 1.2)
    cv2.circle(photo, (16, 13), 8, (230, 40, 40), -1)
    alpha = np.zeros((26, 33), np.float32)
    cv2.circle(alpha, (17, 13), 8, 1.0, -1)
    return photo, cv2.GaussianBlur(alpha, (5, 5), 1.0)


@pytest.mark.parametrize("colour", [True, False])
@pytest.mark.parametrize(("radius", "eps"), [(1, 1e-4), (2, 1e-4), (2, 1e-3), (3, 1e-2)])
def test_fast_filter_at_s1_equals_direct_guided_filter(
    colour: bool, radius: int, eps: float
) -> None:
    photo, alpha = _small_pair()
    guide = photo if colour else cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    expected = direct_guided_filter(guide, alpha, radius, eps)
    assert np.abs(guided.guided_filter(guide, alpha, radius, eps) - expected).max() < 1e-4
    # fast_guided_upsample with alpha and photo at one size is the same filter (s = 1), clipped.
    fast = guided.fast_guided_upsample(alpha, photo, radius=radius, eps=eps, colour=colour)
    assert np.abs(fast - np.clip(expected, 0, 1)).max() < 1e-4


def test_near_grey_edges_with_tiny_eps_stay_finite_and_exact() -> None:
    """R, G and B moving together make the colour covariance nearly singular; a determinant-based
    float32 solve once produced wrong-signed determinants here (garbage alpha) at eps 1e-5."""
    rng = np.random.default_rng(7)
    grey = np.zeros((28, 34), np.float32)
    grey[:, 17:] = 0.95
    grey += rng.normal(0, 0.004, grey.shape).astype(np.float32)
    photo = np.clip(np.dstack([grey, grey * 0.99, grey * 1.01]) * 255, 0, 255).astype(np.uint8)
    alpha = np.zeros((28, 34), np.float32)
    alpha[:, 16:] = 1
    for eps in (1e-5, 1e-6):
        out = guided.guided_filter(photo, alpha, 2, eps)
        assert np.isfinite(out).all()
        assert np.abs(out - direct_guided_filter(photo, alpha, 2, eps)).max() < 1e-3


# OpenCV's ximgproc guided filter takes eps in the guide's own units: for a uint8 guide that is
# eps·255² (our guide is scaled to [0, 1]). Its boxes use BORDER_REFLECT like ours, so with a uint8
# guide the two agree everywhere, borders included: measured max difference ≤ 6e-5 (both float32;
# up to ~2.5e-4 for an ill-conditioned 3×3 colour window at eps 1e-4, not tested). With a float32
# guide in [0, 1], OpenCV's colour path departs from the textbook filter for eps ≤ 1e-3
# (differences up to 0.5), so the uint8 form is the one to compare with, and the one the bench uses.
CV2_TOLERANCE = 1e-4


@pytest.mark.parametrize("colour", [True, False])
@pytest.mark.parametrize(("radius", "eps"), [(2, 1e-4), (1, 1e-3), (4, 1e-2)])
def test_fast_filter_at_s1_matches_opencv_guided_filter(
    colour: bool, radius: int, eps: float
) -> None:
    photo, alpha = _small_pair(1)
    guide = photo if colour else cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    ours = guided.guided_filter(guide, alpha, radius, eps)
    theirs = cv2.ximgproc.guidedFilter(guide, alpha, radius, eps * 255.0**2, -1)  # type: ignore[call-overload]
    assert np.abs(ours - theirs).max() < CV2_TOLERANCE


def _strand_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 1280×960 photo: textured background, a dark head with 1–2 px strands; 160×160 alpha."""
    rng = np.random.default_rng(3)
    h, w = 1280, 960
    bg = cv2.resize((rng.random((12, 9, 3)) * 120 + 120).astype(np.uint8), (w, h))
    photo = np.clip(bg + rng.normal(0, 3, bg.shape), 0, 255).astype(np.uint8)
    truth = np.zeros((h, w), np.uint8)
    cv2.ellipse(truth, (480, 700), (260, 380), 0, 0, 360, 255, -1)
    for i in range(40):
        ang = np.pi * (1.05 + 0.9 * i / 40)
        x0, y0 = 480 + 250 * np.cos(ang), 700 + 370 * np.sin(ang)
        pts = [
            (x0 + t * np.cos(ang + 0.2 * np.sin(t / 30)), y0 + t * np.sin(ang))
            for t in range(0, 220, 20)
        ]
        cv2.polylines(truth, [np.round(np.array(pts)).astype(np.int32)], False, 255, 1 + i % 2)
    photo[truth > 0] = (40, 30, 25)
    low = cv2.resize(truth.astype(np.float32) / 255, (160, 160), interpolation=cv2.INTER_AREA)
    return photo, truth, cv2.GaussianBlur(low, (0, 0), 0.7)


def test_guided_upsampling_beats_bilinear_on_thin_strands() -> None:
    photo, truth, low = _strand_scene()
    fast = to_png(guided.fast_guided_upsample(low, photo))
    bil = to_png(guided.bilinear_upsample(low, truth.shape))
    assert binary_iou(fast, truth) > binary_iou(bil, truth)
    assert binary_boundary_f(fast, truth) > binary_boundary_f(bil, truth) + 0.02
    assert np.abs(fast.astype(float) - truth).mean() < np.abs(bil.astype(float) - truth).mean()


@pytest.mark.parametrize("method", ["guided", "bilinear"])
@pytest.mark.parametrize("hw", [(4032, 3024), (300, 200), (700, 400)])
def test_output_has_the_photo_size(method: guided.Method, hw: tuple[int, int]) -> None:
    photo = np.full((*hw, 3), 128, np.uint8)
    photo[: hw[0] // 2] = 30
    alpha = np.zeros((512, 512), np.float32)
    alpha[:256] = 1
    out = guided.upsample(alpha, photo, method)
    assert out.shape == hw and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert out[: hw[0] // 4].mean() > 0.95 and out[-hw[0] // 4 :].mean() < 0.05


def test_photo_smaller_than_alpha_is_filtered_at_its_own_resolution() -> None:
    assert guided.work_size((512, 512), (300, 200)) == (300, 200)
    assert guided.work_size((512, 512), (700, 400)) == (512, 400)
    photo, alpha = _small_pair()
    big_alpha = cv2.resize(alpha, (66, 52), interpolation=cv2.INTER_LINEAR)
    out = guided.fast_guided_upsample(big_alpha, photo, radius=2, eps=1e-3)
    shrunk = cv2.resize(big_alpha, (33, 26), interpolation=cv2.INTER_AREA)
    expected = np.clip(guided.guided_filter(photo, shrunk, 2, 1e-3), 0, 1)
    assert np.abs(out - expected).max() < 1e-5


def test_tiny_images_and_bad_inputs() -> None:
    out = guided.fast_guided_upsample(
        np.ones((512, 512), np.float32), np.zeros((1, 3, 3), np.uint8)
    )
    assert out.shape == (1, 3)
    with pytest.raises(ValueError, match="upsample"):
        guided.upsample(np.zeros((4, 4)), np.zeros((4, 4, 3), np.uint8), "nearest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="uint8"):
        guided.fast_guided_upsample(np.zeros((4, 4)), np.zeros((4, 4, 3), np.float32))
