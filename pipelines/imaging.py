"""Per-item image work of an import: decode, check, normalise, hash, derive web copies.

Pure (Pillow + numpy, no Django) because it runs in a process pool: decoding, hashing and
thumbnailing are CPU-bound, and the import must stay under a minute for 300 items on two cores.
Every outcome is a value (`ItemOutcome`), never an exception, so one bad file skips one item.

Conventions:
* Stored image: the original bytes when they already decode to upright RGB JPEG/PNG; otherwise a
  lossless PNG of the normalised pixels (EXIF orientation applied, CMYK/16-bit/palette → RGB).
* Stored mask: always an 8-bit PNG with values 0/255, binarised at > 127 (graded masks) after
  16-bit → 8-bit and 0/1 → 0/255 scaling.
"""

from __future__ import annotations

import io
import os
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipelines.hashing import sha256_bytes
from pipelines.masks import gt_foreground

WEB_LONG_SIDE = 1024
THUMB_LONG_SIDE = 256
WEB_JPEG_QUALITY = 85
OVERLAY_RGB = np.array([255, 32, 96], dtype=np.float32)
OVERLAY_ALPHA = 0.5
EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ItemTask:
    stem: str
    image: str
    image_label: str
    mask: str
    mask_label: str
    staging: str
    max_pixels: int
    instances: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Blob:
    """A file written into the staging folder, named by its content."""

    path: str
    sha256: str
    ext: str


@dataclass
class ItemOutcome:
    stem: str
    ok: bool = False
    skip: dict[str, str] | None = None  # {"file", "reason", "action"} when skipped
    image: Blob | None = None
    mask: Blob | None = None
    web: Blob | None = None
    web_overlay: Blob | None = None
    thumb: Blob | None = None
    thumb_overlay: Blob | None = None
    instances: list[tuple[Blob, float]] = field(default_factory=list)
    width: int = 0
    height: int = 0
    fg_fraction: float = 0.0
    notes: list[dict[str, str]] = field(default_factory=list)  # {"file", "kind", "note"}


class ItemSkip(Exception):
    def __init__(self, file: str, reason: str, action: str) -> None:
        super().__init__(reason)
        self.entry = {"file": file, "reason": reason, "action": action}


def process_item(task: ItemTask) -> ItemOutcome:
    """Never raises: a problem with this item becomes `skip`, so the import goes on."""
    try:
        return _process(task)
    except ItemSkip as skip:
        return ItemOutcome(stem=task.stem, skip=skip.entry)
    except MemoryError:
        return ItemOutcome(
            stem=task.stem,
            skip={
                "file": task.image_label,
                "reason": "ran out of memory while decoding",
                "action": "downscale the image",
            },
        )
    except Exception as exc:  # an unforeseen decoder failure must not stop the whole import
        return ItemOutcome(
            stem=task.stem,
            skip={
                "file": task.image_label,
                "reason": f"could not be processed ({type(exc).__name__}: {_unpathed(exc, task)})",
                "action": "re-export the image and mask as JPEG/PNG",
            },
        )


def _unpathed(exc: BaseException, task: ItemTask) -> str:
    """The error text with the files' server paths (an extraction folder) replaced by labels."""
    return str(exc).replace(task.image, task.image_label).replace(task.mask, task.mask_label)


def _process(task: ItemTask) -> ItemOutcome:
    out = ItemOutcome(stem=task.stem)
    staging = Path(task.staging)
    img = _open(task.image, task.image_label, task.max_pixels, "image")
    img, rotated = _upright(img, task.image_label, out)
    rgb, converted = _to_rgb(img, task.image_label, out)
    mask_img = _open(task.mask, task.mask_label, task.max_pixels, "mask")
    mask_img, _ = _upright(mask_img, task.mask_label, out)
    if mask_img.size != rgb.size:
        raise ItemSkip(
            task.mask_label,
            f"mask is {mask_img.width}×{mask_img.height} but its image is {rgb.width}×{rgb.height}",
            "export the mask at the image's size (same stem) and import again",
        )
    binary = _binarise(mask_img, task.mask_label, out)

    raw = Path(task.image).read_bytes()
    fmt = (img.format or "").upper()
    if not rotated and not converted and fmt in {"JPEG", "PNG"}:
        out.image = _put(staging, raw, ".jpg" if fmt == "JPEG" else ".png")
    else:
        out.image = _put(staging, _png(rgb), ".png")
    out.mask = _put(staging, _png(Image.fromarray(binary.astype(np.uint8) * 255, "L")), ".png")
    out.width, out.height = rgb.size
    out.fg_fraction = float(binary.mean())
    _derive(rgb, binary, staging, out)
    for path, label in task.instances:
        inst = _open(path, label, task.max_pixels, "instance mask")
        inst, _ = _upright(inst, label, out)
        if inst.size != rgb.size:
            out.notes.append(
                {
                    "file": label,
                    "kind": "instances_ignored",
                    "note": "instance mask size differs from the image; instances "
                    "of this item were not imported",
                }
            )
            out.instances = []
            break
        inst_bin = _binarise(inst, label, out)
        blob = _put(staging, _png(Image.fromarray(inst_bin.astype(np.uint8) * 255, "L")), ".png")
        out.instances.append((blob, float(inst_bin.mean())))
    out.ok = True
    return out


def _open(path: str, label: str, max_pixels: int, what: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except FileNotFoundError:
        raise ItemSkip(label, f"{what} file not found", "add the file or fix its path") from None
    except Image.DecompressionBombError:  # Pillow's own text quotes its limit, not ours
        raise ItemSkip(
            label,
            f"{what} is over the {max_pixels / 1e6:g} MP limit (DATASET_MAX_PIXELS, "
            "decompression-bomb guard)",
            "downscale the image and its mask below the limit",
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ItemSkip(
            label,
            f"{what} is not a readable image ({type(exc).__name__})",
            "re-export it as JPEG or PNG",
        ) from None
    w, h = img.size
    if w * h > max_pixels:
        raise ItemSkip(
            label,
            f"{what} is {w}×{h} = {w * h / 1e6:.1f} MP, over the {max_pixels / 1e6:g} MP limit "
            "(decompression-bomb guard)",
            "downscale the image and its mask below the limit",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ItemSkip(
            label,
            f"{what} cannot be decoded; the file is truncated or corrupt ({exc})",
            "re-export or re-download the file",
        ) from None
    return img


def _upright(img: Image.Image, label: str, out: ItemOutcome) -> tuple[Image.Image, bool]:
    orientation = img.getexif().get(EXIF_ORIENTATION, 1)
    if orientation in (None, 1) or not isinstance(orientation, int) or orientation > 8:
        return img, False
    fmt = img.format
    turned = ImageOps.exif_transpose(img)
    turned.format = fmt
    out.notes.append(
        {
            "file": label,
            "kind": "exif_orientation",
            "note": f"EXIF orientation {orientation} applied",
        }
    )
    return turned, True


def _to_rgb(img: Image.Image, label: str, out: ItemOutcome) -> tuple[Image.Image, bool]:
    mode = img.mode
    if mode == "RGB":
        return img, False
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I"}:
        arr = np.asarray(img).astype(np.int64)
        arr = arr >> 8 if arr.max(initial=0) > 255 else arr
        rgb = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L").convert("RGB")
        note = f"16-bit greyscale ({mode}) converted to 8-bit RGB"
    elif mode == "CMYK":
        rgb, note = img.convert("RGB"), "CMYK converted to RGB"
    elif mode in {"P", "PA"}:
        rgb, note = img.convert("RGBA").convert("RGB"), "palette image converted to RGB"
    elif mode in {"RGBA", "LA", "La", "RGBa"}:
        rgb, note = img.convert("RGB"), f"{mode} image: alpha channel dropped, stored as RGB"
    else:
        rgb, note = img.convert("RGB"), f"{mode} image converted to RGB"
    out.notes.append({"file": label, "kind": "converted", "note": note})
    return rgb, True


def _binarise(mask: Image.Image, label: str, out: ItemOutcome) -> np.ndarray:
    """Mask → boolean foreground, recording every conversion a reviewer would want to know."""
    mode = mask.mode
    arr: np.ndarray
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I"}:
        arr = np.asarray(mask).astype(np.int64)
        if arr.max(initial=0) > 255:
            arr = arr >> 8
            note = f"16-bit mask ({mode}) converted to 8-bit"
        else:
            note = f"16-bit mask ({mode}) holds values ≤ 255; read as 8-bit"
        out.notes.append({"file": label, "kind": "converted", "note": note})
    elif mode == "F":
        arr = np.asarray(mask).astype(np.float64)
        if arr.max(initial=0.0) <= 1.0:
            arr = arr * 255.0
        out.notes.append({"file": label, "kind": "converted", "note": "float mask → 8-bit"})
    elif mode in {"1", "L"}:
        arr = np.asarray(mask.convert("L"))
    else:
        kind = "palette" if mode in {"P", "PA"} else mode
        out.notes.append(
            {"file": label, "kind": "converted", "note": f"{kind} mask converted to greyscale"}
        )
        arr = np.asarray(mask.convert("RGBA").convert("L") if mode == "PA" else mask.convert("L"))
    values = np.unique(arr)
    if values.size <= 2 and set(values.tolist()) <= {0, 1} and 1 in values:
        out.notes.append(
            {"file": label, "kind": "scaled", "note": "mask uses values 0/1; read 1 as foreground"}
        )
        return arr > 0
    if not set(values.tolist()) <= {0, 255}:
        out.notes.append(
            {
                "file": label,
                "kind": "binarised",
                "note": f"graded mask ({values.size} levels) binarised at > 127",
            }
        )
    return gt_foreground(arr)


def _derive(rgb: Image.Image, binary: np.ndarray, staging: Path, out: ItemOutcome) -> None:
    web = rgb.copy()
    web.thumbnail((WEB_LONG_SIDE, WEB_LONG_SIDE), Image.Resampling.LANCZOS)
    web_mask = Image.fromarray(binary.astype(np.uint8) * 255, "L")
    if web_mask.size != web.size:
        web_mask = web_mask.resize(web.size, Image.Resampling.NEAREST)
    overlay = _overlay(web, gt_foreground(np.asarray(web_mask)))
    thumb = web.copy()
    thumb.thumbnail((THUMB_LONG_SIDE, THUMB_LONG_SIDE), Image.Resampling.LANCZOS)
    thumb_overlay = overlay.copy()
    thumb_overlay.thumbnail((THUMB_LONG_SIDE, THUMB_LONG_SIDE), Image.Resampling.LANCZOS)
    out.web = _put(staging, _jpeg(web), ".jpg")
    out.web_overlay = _put(staging, _jpeg(overlay), ".jpg")
    out.thumb = _put(staging, _jpeg(thumb), ".jpg")
    out.thumb_overlay = _put(staging, _jpeg(thumb_overlay), ".jpg")


def _overlay(rgb: Image.Image, fg: np.ndarray) -> Image.Image:
    arr = np.asarray(rgb).astype(np.float32)
    arr[fg] = arr[fg] * (1 - OVERLAY_ALPHA) + OVERLAY_RGB * OVERLAY_ALPHA
    return Image.fromarray(arr.round().astype(np.uint8), "RGB")


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=WEB_JPEG_QUALITY)  # no exif=/icc_profile=: metadata stripped
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")  # default zlib level: deterministic bytes for equal pixels
    return buf.getvalue()


def _put(staging: Path, data: bytes, ext: str) -> Blob:
    sha = sha256_bytes(data)
    target = staging / f"{sha}{ext}"
    if not target.exists():
        tmp = staging / f".{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, target)  # atomic: two processes writing equal bytes never tear a file
    return Blob(path=str(target), sha256=sha, ext=ext)


def pool_init(max_image_pixels: int) -> None:
    """Pool initializer: Pillow's own bomb check a notch above ours, so ours reports first."""
    Image.MAX_IMAGE_PIXELS = max(max_image_pixels, 1) * 2
