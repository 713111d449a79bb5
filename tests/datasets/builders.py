"""Realistic test inputs: real JPEG/PNG bytes made with Pillow/numpy, laid out like a set."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def photo(w: int = 64, h: int = 48, seed: int = 0) -> Image.Image:
    """A textured RGB picture (gradients + noise) that compresses like a photograph."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack(
        [xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1), np.full((h, w), (seed * 37) % 256)],
        axis=-1,
    )
    noise = rng.integers(0, 40, size=(h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def box_mask(w: int = 64, h: int = 48, frac: float = 0.25) -> np.ndarray:
    """0/255 uint8 mask with a centred box covering about `frac` of the picture."""
    m = np.zeros((h, w), np.uint8)
    if frac <= 0:
        return m
    side = np.sqrt(frac)
    bh, bw = max(1, round(h * side)), max(1, round(w * side))
    y0, x0 = (h - bh) // 2, (w - bw) // 2
    m[y0 : y0 + bh, x0 : x0 + bw] = 255
    return m


def jpeg_bytes(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def png_bytes(img: Image.Image | np.ndarray) -> bytes:
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def make_set(
    root: Path,
    n: int = 3,
    *,
    w: int = 64,
    h: int = 48,
    seed: int = 0,
    fracs: list[float] | None = None,
) -> Path:
    """root/images/item{i}.jpg + root/masks/item{i}.png, distinct pictures."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        frac = fracs[i] if fracs else 0.25
        (root / "images" / f"item{i}.jpg").write_bytes(jpeg_bytes(photo(w, h, seed + i)))
        (root / "masks" / f"item{i}.png").write_bytes(png_bytes(box_mask(w, h, frac)))
    return root


def write_manifest(root: Path, rows: list[dict[str, str]], name: str = "manifest.csv") -> Path:
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    path = root / name
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def zip_folder(folder: Path, dest: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(folder).as_posix())
    return dest
