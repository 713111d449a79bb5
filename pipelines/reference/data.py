"""Training/validation data for the reference network (numpy + cv2 only, no torch Dataset).

Why in-process and pre-decoded: the training machine has 2 cores that torch already uses, so worker
processes would only contend; decoding the ~800 JPEGs once (~0.5 GB) makes a sample a few cv2 calls.

Augmentation mixes three kinds of sample so the network learns both "where is the subject" and
"is there a subject at all":

* plain: random resized crop (stretched to a square like the contract's ``stretch`` resize), flip;
* composite: a training foreground cut out by its mask and pasted onto another image's background
  region or a procedural texture — the target is exactly the pasted alpha (``composite``);
* negative: a background crop that contains no mask pixel (or a texture), empty mask, confidence 0.

Colour jitter applies to all of them. Items are any folder with ``images/`` and ``masks/``
(same stem) and an optional ``manifest.csv``, so tests can point it at a tiny synthetic set.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipelines.masks import gt_foreground
from pipelines.parse import int_or_none
from pipelines.synth.monk import GENDERS
from pipelines.synth.negatives import make_negative
from pipelines.synth.people import draw_person, random_person_spec

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
IMAGE_EXTS = (".jpg", ".jpeg", ".png")


@dataclass
class Item:
    """One decoded pair: RGB uint8 H×W×3 image, uint8 H×W mask in {0, 255}."""

    image_path: Path
    image: np.ndarray
    mask: np.ndarray


def list_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """(image, mask) paths of a dataset folder, from manifest.csv when present, else by stem."""
    folder = Path(folder)
    manifest = folder / "manifest.csv"
    if manifest.exists():
        with manifest.open(newline="") as f:
            return [(folder / r["image"], folder / r["mask"]) for r in csv.DictReader(f)]
    pairs = []
    for img in sorted((folder / "images").iterdir()):
        if img.suffix.lower() in IMAGE_EXTS:
            mask = folder / "masks" / f"{img.stem}.png"
            if mask.exists():
                pairs.append((img, mask))
    return pairs


def _stem_number(p: Path) -> int | None:
    return int_or_none(p.stem)


def split_pairs(data_root: Path) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """Train = all of sod/ + pascal-s items 1–400; val = pascal-s 401–500.

    A root without those sub-folders (e.g. a test's tmp dir) is one dataset split 80/20 by order.
    """
    root = Path(data_root)
    if (root / "sod").is_dir() and (root / "pascal-s").is_dir():
        pascal = list_pairs(root / "pascal-s")
        train = list_pairs(root / "sod") + [p for p in pascal if (_stem_number(p[0]) or 0) <= 400]
        val = [p for p in pascal if (_stem_number(p[0]) or 0) > 400]
        return train, val
    pairs = list_pairs(root)
    n_val = max(1, len(pairs) // 5)
    return pairs[:-n_val], pairs[-n_val:]


def load_item(image_path: Path, mask_path: Path) -> Item:
    img = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    if img is None or mask is None:
        raise FileNotFoundError(f"cannot read {image_path} or {mask_path}")
    if mask.shape != img.shape[:2]:
        raise ValueError(f"{mask_path}: mask {mask.shape} does not match image {img.shape[:2]}")
    return Item(
        Path(image_path),
        cv2.cvtColor(img, cv2.COLOR_BGR2RGB),
        np.where(gt_foreground(mask), 255, 0).astype(np.uint8),
    )


def load_items(pairs: list[tuple[Path, Path]]) -> list[Item]:
    return [load_item(i, m) for i, m in pairs]


def normalize(img: np.ndarray) -> np.ndarray:
    """uint8 H×W×3 RGB -> float32 3×H×W with the contract's ImageNet normalisation."""
    x = (img.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def resize_square(img: np.ndarray, size: int, interp: int = cv2.INTER_AREA) -> np.ndarray:
    return cv2.resize(img, (size, size), interpolation=interp)


# ---------------------------------------------------------------- pure composition helpers
def procedural_texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random background (noise, stripes, grain): no salient object in it."""
    cells = int(rng.integers(2, 12))
    noise = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
    tex = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    grid = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = grid[0], grid[1]
    if rng.random() < 0.5:
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 40)
        stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        tex += stripes[..., None] * rng.uniform(5, 40)
    tex += np.asarray(rng.normal(0, rng.uniform(1, 12), tex.shape), np.float32)
    return np.clip(tex, 0, 255).astype(np.uint8)


def composite(
    fg: np.ndarray, fg_mask: np.ndarray, bg: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Paste the masked foreground onto ``bg`` with scale/position/flip jitter.

    Returns (image uint8 like ``bg``, mask float32 in [0, 1]) where the mask *is* the alpha used
    to blend, so the label is exact by construction: ``img = fg' * mask + bg * (1 - mask)``.
    """
    ys, xs = np.nonzero(gt_foreground(fg_mask))
    h, w = bg.shape[:2]
    if len(ys) == 0:
        return bg.copy(), np.zeros((h, w), np.float32)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    obj: np.ndarray = fg[y0:y1, x0:x1]
    alpha: np.ndarray = gt_foreground(fg_mask[y0:y1, x0:x1]).astype(np.float32)
    if rng.random() < 0.5:
        obj, alpha = obj[:, ::-1], alpha[:, ::-1]
    # Object's longer bbox side covers 35–95 % of the canvas's matching side, aspect jittered ±20 %.
    oh, ow = alpha.shape
    scale = rng.uniform(0.35, 0.95) * min(h / oh, w / ow)
    aspect = rng.uniform(0.8, 1.25)
    nh = int(np.clip(round(oh * scale * aspect), 2, h))
    nw = int(np.clip(round(ow * scale / aspect), 2, w))
    obj = cv2.resize(np.ascontiguousarray(obj), (nw, nh), interpolation=cv2.INTER_LINEAR)
    alpha = cv2.resize(np.ascontiguousarray(alpha), (nw, nh), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:  # slight edge feathering, still exactly the blending alpha
        alpha = cv2.GaussianBlur(alpha, (3, 3), 0)
    top, left = int(rng.integers(0, h - nh + 1)), int(rng.integers(0, w - nw + 1))
    mask = np.zeros((h, w), np.float32)
    mask[top : top + nh, left : left + nw] = alpha
    canvas = np.zeros_like(bg)
    canvas[top : top + nh, left : left + nw] = obj
    a = mask[..., None]
    img = np.clip(canvas.astype(np.float32) * a + bg.astype(np.float32) * (1 - a) + 0.5, 0, 255)
    return img.astype(np.uint8), mask


def random_crop_box(
    h: int, w: int, rng: np.random.Generator, scale: tuple[float, float]
) -> tuple[int, int, int, int]:
    """Random (y, x, ch, cw) box covering ``scale`` of the area, aspect ratio jittered 3/4–4/3."""
    area = h * w * rng.uniform(*scale)
    ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))) * w / h
    cw = int(np.clip(round(np.sqrt(area * ratio)), 8, w))
    ch = int(np.clip(round(np.sqrt(area / ratio)), 8, h))
    return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw


def background_crop(item: Item, rng: np.random.Generator, tries: int = 12) -> np.ndarray | None:
    """A crop of ``item`` with no foreground pixel at all, or None when none was found."""
    h, w = item.mask.shape
    for _ in range(tries):
        y, x, ch, cw = random_crop_box(h, w, rng, (0.08, 0.4))
        if not item.mask[y : y + ch, x : x + cw].any():
            return item.image[y : y + ch, x : x + cw]
    return None


def color_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness/contrast/saturation/hue jitter, occasional greyscale and blur."""
    x = img.astype(np.float32)
    x = x * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.7, 1.3) + mean
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * (0.0 if rng.random() < 0.05 else rng.uniform(0.6, 1.4))
    x = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + int(rng.integers(-8, 9))) % 180).astype(
            np.uint8
        )
        x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.random() < 0.15:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.5))
    return x


NEGATIVE_SCALES: tuple[tuple[float, float], ...] = ((0.02, 0.08), (0.08, 0.25), (0.25, 0.6))


def real_negative_crop(item: Item, rng: np.random.Generator, tries: int = 12) -> np.ndarray | None:
    """A no-subject crop of a real training photo at one of several scales (small to large).

    The scale band is drawn first (so large crops are asked for as often as small ones), then up to
    ``tries`` boxes of that band are checked for an empty mask; None when the photo has none.
    """
    h, w = item.mask.shape
    scale = NEGATIVE_SCALES[int(rng.integers(len(NEGATIVE_SCALES)))]
    for _ in range(tries):
        y, x, ch, cw = random_crop_box(h, w, rng, scale)
        if not item.mask[y : y + ch, x : x + cw].any():
            return item.image[y : y + ch, x : x + cw]
    return None


class TrainSampler:
    """Draws augmented (image, mask, has_subject) samples at ``size``² from decoded items.

    Kinds of sample (probabilities ``p_negative``, ``p_composite``, the rest plain photos):

    * negative — no subject, confidence target 0. One of: a real no-subject crop of a training photo
      (several scales, :func:`real_negative_crop`), a whole training item whose mask is empty (the
      no-subject PASCAL-S items of the training split), a generator negative
      (:func:`pipelines.synth.negatives.make_negative`: inpainted background or noise / gradient /
      stripes), or a procedural texture;
    * composite — composed on the fly each step: a foreground onto a sampled background (real crop,
      generator negative or texture). With probability ``p_person`` the foreground is one of the
      generator's synthetic people (:func:`pipelines.synth.people.draw_person`), else a real cut-out
      of a training item by its ground-truth mask;
    * plain — a random resized crop of a training photo.

    ``synth=False`` keeps 1.0.0/1.1.0's sampler (crop/texture negatives, real cut-outs only).
    """

    def __init__(
        self,
        items: list[Item],
        size: int,
        p_composite: float = 0.3,
        p_negative: float = 0.1,
        p_person: float = 0.0,
        synth: bool = False,
    ):
        self.items, self.size = items, size
        self.p_composite, self.p_negative, self.p_person = p_composite, p_negative, p_person
        self.synth = synth
        self.fg_items = [it for it in items if it.mask.any()]
        self.empty_items = [it for it in items if not it.mask.any()]
        self.kinds: dict[str, int] = {}  # sample kind -> count, for the training log

    def _count(self, kind: str) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def _synth_negative(self, rng: np.random.Generator) -> np.ndarray:
        s = self.size
        if rng.random() < 0.5 and self.fg_items:
            src = self.fg_items[int(rng.integers(len(self.fg_items)))]
            # Work at <= 2x the sample size: the generator inpaints at the source resolution.
            scale = min(1.0, 2 * s / max(src.mask.shape))
            img, msk = src.image, src.mask
            if scale < 1.0:
                dsize = (round(img.shape[1] * scale), round(img.shape[0] * scale))
                img = cv2.resize(img, dsize, interpolation=cv2.INTER_AREA)
                msk = cv2.resize(msk, dsize, interpolation=cv2.INTER_NEAREST)
            out, _ = make_negative((s, s), rng, kind="background", source=(img, msk))
            return out
        out, _ = make_negative((s, s), rng)
        return out

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        if not self.synth:
            if rng.random() < 0.75:
                crop = background_crop(self.items[int(rng.integers(len(self.items)))], rng)
                if crop is not None:
                    return crop
            return procedural_texture(self.size, self.size, rng)
        u = rng.random()
        if u < 0.6:
            crop = real_negative_crop(self.items[int(rng.integers(len(self.items)))], rng)
            if crop is not None:
                return crop
        if u < 0.85:
            return self._synth_negative(rng)
        return procedural_texture(self.size, self.size, rng)

    def _negative(self, rng: np.random.Generator) -> np.ndarray:
        if self.synth and self.empty_items and rng.random() < 0.1:
            self._count("negative_empty_item")
            it = self.empty_items[int(rng.integers(len(self.empty_items)))]
            h, w = it.mask.shape
            y, x, ch, cw = (
                (0, 0, h, w) if rng.random() < 0.5 else random_crop_box(h, w, rng, (0.3, 1.0))
            )
            return it.image[y : y + ch, x : x + cw]
        self._count("negative")
        return self._background(rng)

    def _person(self, bg: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        spec = random_person_spec(
            int(rng.integers(1, 11)), GENDERS[int(rng.integers(len(GENDERS)))], rng
        )
        img, mask = draw_person(np.ascontiguousarray(bg), spec, rng)
        return img, mask.astype(np.float32) / 255.0

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
        """Return (uint8 size×size×3 RGB, float32 size×size mask in [0, 1], confidence target)."""
        s = self.size
        u = rng.random()
        if u < self.p_negative or not self.fg_items:
            img = resize_square(self._negative(rng), s, cv2.INTER_LINEAR)
            mask = np.zeros((s, s), np.float32)
        elif u < self.p_negative + self.p_composite:
            bg = resize_square(self._background(rng), s, cv2.INTER_LINEAR)
            if self.synth and rng.random() < self.p_person:
                self._count("composite_person")
                img, mask = self._person(bg, rng)
            else:
                self._count("composite_real")
                fg = self.fg_items[int(rng.integers(len(self.fg_items)))]
                img, mask = composite(fg.image, fg.mask, bg, rng)
        else:
            self._count("plain")
            it = self.items[int(rng.integers(len(self.items)))]
            h, w = it.mask.shape
            y, x, ch, cw = (
                (0, 0, h, w) if rng.random() < 0.35 else random_crop_box(h, w, rng, (0.3, 1.0))
            )
            img = resize_square(it.image[y : y + ch, x : x + cw], s)
            mask = (
                resize_square(it.mask[y : y + ch, x : x + cw], s, cv2.INTER_LINEAR).astype(
                    np.float32
                )
                / 255.0
            )
        if rng.random() < 0.5:
            img, mask = img[:, ::-1], mask[:, ::-1]
        img = color_jitter(np.ascontiguousarray(img), rng)
        return img, np.ascontiguousarray(mask), float(mask.max() > 0.5)

    def batch(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N×3×S×S normalised float32, N×1×S×S float32 masks, N float32 confidence targets)."""
        samples = [self.sample(rng) for _ in range(n)]
        x = np.stack([normalize(s[0]) for s in samples])
        y = np.stack([s[1][None] for s in samples])
        c = np.array([s[2] for s in samples], np.float32)
        return x, y, c


def validation_negatives(items: list[Item], seed: int = 0, size: int = 512) -> list[Item]:
    """Deterministic no-subject items made from *validation* photos only (never trained on).

    Per photo: one real no-subject crop when one exists (:func:`real_negative_crop`), and one
    generator negative (inpainted background of the photo); plus one procedural generator negative
    (noise / gradient / stripes) per photo. Used to choose and check the gate threshold, where the
    three empty-mask PASCAL-S items alone would be too few.
    """
    rng = np.random.default_rng(seed)
    out: list[Item] = []

    def add(it: Item, tag: str, img: np.ndarray) -> None:
        out.append(Item(Path(f"{it.image_path}#{tag}"), img, np.zeros(img.shape[:2], np.uint8)))

    for it in items:
        crop = real_negative_crop(it, rng, tries=30)
        if crop is not None:
            add(it, "crop", crop)
        if it.mask.any():
            bg, _ = make_negative((size, size), rng, kind="background", source=(it.image, it.mask))
            add(it, "inpainted", bg)
        tex, kind = make_negative((size, size), rng)
        add(it, kind, tex)
    return out
