""" "No subject" items: background regions with their object removed, and procedural textures.

Why: an item whose mask is empty measures *gating* — whether a model declines to lift anything when
there is nothing to lift. Real-photo negatives keep the statistics of the positives' backgrounds
(crop outside the dilated salient mask, leftovers inpainted); textures (noise, gradients, stripes)
probe the failure modes where models hallucinate subjects in high-contrast patterns.
"""

from __future__ import annotations

import numpy as np

from .backgrounds import background_crop, resize_to

PROCEDURAL_KINDS: tuple[str, ...] = ("noise", "gradient", "stripes")
NEGATIVE_KINDS: tuple[str, ...] = ("background", *PROCEDURAL_KINDS)


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3).astype(np.float32)


def _grain(h: int, w: int, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Per-pixel Gaussian grain; float32 draws keep 12 MP textures under a second."""
    return rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(sigma)


def _noise(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Smooth value noise (coarse random grid, upsampled) between two colours, plus grain."""
    w, h = size
    cells = int(rng.integers(3, 12))
    gh, gw = max(2, round(cells * h / max(w, h))), max(2, round(cells * w / max(w, h)))
    a, b = _colour(rng), _colour(rng)
    t = rng.uniform(0, 1, (gh, gw, 1)).astype(np.float32)
    small = a * (1 - t) + b * t
    big = resize_to(np.clip(small, 0, 255).astype(np.uint8), (w, h)).astype(np.float32)
    return big + _grain(h, w, rng, float(rng.uniform(2, 10)))


def _direction(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Signed distance (px) along a random direction, centred on the image."""
    w, h = size
    ang = rng.uniform(0, np.pi)
    xs = (np.arange(w, dtype=np.float32) - w / 2) * np.float32(np.cos(ang))
    ys = (np.arange(h, dtype=np.float32) - h / 2) * np.float32(np.sin(ang))
    return ys[:, None] + xs[None, :]


def _gradient(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Linear two-colour gradient at a random angle; slight grain avoids 8-bit banding."""
    w, h = size
    d = _direction(size, rng)
    t = (d - d.min()) / max(float(d.max() - d.min()), 1e-6)
    a, b = _colour(rng), _colour(rng)
    img = a * (1 - t[..., None]) + b * t[..., None]
    return img + _grain(h, w, rng, 1.5)


def _stripes(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Hard or sinusoidal stripes at a random angle and period (2-12 % of the short side)."""
    w, h = size
    d = _direction(size, rng)
    period = float(rng.uniform(0.02, 0.12)) * min(w, h)
    v = 0.5 + 0.5 * np.sin(d * np.float32(2 * np.pi / max(period, 2.0)))
    if rng.random() < 0.5:
        v = (v > 0.5).astype(np.float32)
    a, b = _colour(rng), _colour(rng)
    return a * (1 - v[..., None]) + b * v[..., None] + _grain(h, w, rng, 2.0)


def make_negative(
    size: tuple[int, int],
    rng: np.random.Generator,
    kind: str | None = None,
    source: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, str]:
    """Make a (W, H) RGB image with no salient subject; returns (image, kind).

    ``kind`` is one of :data:`NEGATIVE_KINDS`; None picks ``background`` when ``source`` (an RGB
    image and its salient mask) is given, a random procedural kind otherwise. A ``background``
    negative needs the mask: without it we could not promise the crop holds no subject.
    """
    if kind is None:
        kind = "background" if source is not None else PROCEDURAL_KINDS[int(rng.integers(0, 3))]
    if kind == "background":
        if source is None:
            raise ValueError("a 'background' negative needs source=(image, salient mask)")
        img, _ = background_crop(source[0], source[1], size, rng)
        return img, kind
    makers = {"noise": _noise, "gradient": _gradient, "stripes": _stripes}
    if kind not in makers:
        raise ValueError(f"negative kind must be one of {NEGATIVE_KINDS}, got {kind!r}")
    img = makers[kind](size, rng)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), kind
