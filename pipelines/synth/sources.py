"""Input folders: listing, loading and provenance (licence) of foregrounds and backgrounds.

Why: outputs must be byte-identical for the same seed, so listings are sorted; and every derived
item must carry the licence of what it was cut from, so provenance is resolved once per folder here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pipelines.masks import gt_foreground

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
GENERATED_LICENCE = "generated"


class SourceError(ValueError):
    """A problem with an input folder, phrased for the person who passed it."""


@dataclass(frozen=True)
class SourceItem:
    """One image (and, when known, its binary salient-object mask) from an input folder."""

    dataset: str
    stem: str
    image_path: Path
    mask_path: Path | None

    @property
    def ref(self) -> str:
        """Short provenance reference, e.g. ``sod/12003``."""
        return f"{self.dataset}/{self.stem}"


@dataclass(frozen=True)
class SourceFolder:
    """A sorted listing of an input folder plus the licence tags derived from it."""

    path: Path
    items: tuple[SourceItem, ...]
    licence_tags: tuple[str, ...] = field(default=())

    @property
    def has_masks(self) -> bool:
        return any(it.mask_path is not None for it in self.items)

    @property
    def masked(self) -> tuple[SourceItem, ...]:
        return tuple(it for it in self.items if it.mask_path is not None)


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS),
        key=lambda p: p.name,
    )


def _licence_tags(folder: Path) -> tuple[str, ...]:
    """Which upstream licences apply, from the folder name and its manifest's licence column."""
    text = folder.name.lower()
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        with manifest.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for i, row in enumerate(reader):
                text += " " + (row.get("licence") or "").lower()
                if i >= 20:  # the licence is per-folder in practice; a sample is enough
                    break
    tags = []
    if "bsds" in text or folder.name.lower() == "sod":
        tags.append("BSDS500")
    if "pascal" in text or "voc" in text:
        tags.append("PASCAL VOC")
    if not tags:
        tags.append(f"source folder '{folder.name}'")
    return tuple(tags)


def licence_for(*folders: SourceFolder | None) -> str:
    """Licence string inherited by an item derived from the given folders (None = procedural)."""
    tags: list[str] = []
    for f in folders:
        if f is None:
            continue
        for t in f.licence_tags:
            if t not in tags:
                tags.append(t)
    if not tags:
        return GENERATED_LICENCE
    return f"research only (derived from {' / '.join(tags)})"


def list_fg_folder(path: Path) -> SourceFolder:
    """List an ``images/`` + ``masks/`` folder; only stems with both are usable foregrounds."""
    path = Path(path)
    if not path.is_dir():
        raise SourceError(f"--fg folder not found: {path}")
    img_dir, mask_dir = path / "images", path / "masks"
    if not img_dir.is_dir() or not mask_dir.is_dir():
        raise SourceError(f"--fg folder {path} must contain images/ and masks/ subfolders")
    masks = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() == ".png"}
    items = tuple(
        SourceItem(path.name, p.stem, p, masks[p.stem])
        for p in _images_in(img_dir)
        if p.stem in masks
    )
    if not items:
        raise SourceError(f"--fg folder {path}: no image in images/ has a mask masks/<stem>.png")
    return SourceFolder(path, items, _licence_tags(path))


def list_bg_folder(path: Path) -> SourceFolder:
    """List a background folder: plain images, or the ``images/`` (+ optional ``masks/``) layout."""
    path = Path(path)
    if not path.is_dir():
        raise SourceError(f"--bg folder not found: {path}")
    img_dir = path / "images"
    if img_dir.is_dir():
        mask_dir = path / "masks"
        masks = (
            {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() == ".png"}
            if mask_dir.is_dir()
            else {}
        )
        items = tuple(
            SourceItem(path.name, p.stem, p, masks.get(p.stem)) for p in _images_in(img_dir)
        )
    else:
        items = tuple(SourceItem(path.name, p.stem, p, None) for p in _images_in(path))
    if not items:
        raise SourceError(f"--bg folder {path} holds no images ({', '.join(IMAGE_EXTS)})")
    return SourceFolder(path, items, _licence_tags(path))


def read_rgb(path: Path) -> np.ndarray:
    """Read an image as uint8 RGB (EXIF orientation ignored: the datasets are pre-rotated)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise SourceError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_mask(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask as booleans (value > 127 is foreground: the datasets' binarisation rule)."""
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise SourceError(f"cannot read mask {path}")
    if shape is not None and m.shape != shape:
        raise SourceError(
            f"mask {path} is {m.shape[1]}x{m.shape[0]}, image is {shape[1]}x{shape[0]}"
        )
    return gt_foreground(m)


def load(item: SourceItem) -> tuple[np.ndarray, np.ndarray | None]:
    """Load an item's RGB image and boolean mask (None when the folder has no mask for it)."""
    rgb = read_rgb(item.image_path)
    mask = read_mask(item.mask_path, rgb.shape[:2]) if item.mask_path is not None else None
    return rgb, mask
