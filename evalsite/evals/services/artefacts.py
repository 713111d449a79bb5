"""Files a run writes per item, under MEDIA_ROOT/runs/<run_id>/, laid out like `predict`'s folders.

Why this layout: `runs/<id>/alpha/` is exactly what `python -m pipelines.predict --out` writes
(one 8-bit `<stem>.png` per image, gated) and `alpha_ungated/` what `--no-gate` writes, so
`python -m pipelines.metrics --pred runs/<id>/alpha --gt <masks>` reproduces the run page. Writes
go to a temporary name and are renamed, so a retried chunk overwrites a file atomically and a
crash never leaves half a PNG that a later aggregation would read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from pipelines.hashing import sha256_file
from pipelines.postprocess.cutout import (
    WEB_MAX_SIDE,
    encode_png,
    instance_cutouts,
    rgba_cutout,
    web_copy,
)
from pipelines.postprocess.pipeline import PostResult

#: Overlay tint of the predicted foreground on web copies (RGB) and its opacity.
OVERLAY_RGB = (255, 64, 160)
OVERLAY_OPACITY = 0.45


#: zlib level, strategy and row filter of the RGBA cutouts, encoded by OpenCV's libpng: level 1
#: with Huffman-only coding encodes a photo-sized RGBA PNG ~2.8× faster than Pillow at level 1,
#: and ~10× faster than Pillow's default 6, for ~1 % fewer bytes than Pillow's level 1; the fixed
#: "Sub" row filter instead of libpng's per-row trial of all five makes it another 1.7× faster
#: for 4 % more bytes (measured on pascal-s-demo: 11 vs 19 ms CPU and 393 vs 376 KiB per cutout;
#: cutout encoding was the largest share of a chunk's time). Pixels are identical at any setting;
#: the scored alpha PNGs keep `encode_png`, byte for byte what `predict` writes.
CUTOUT_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1,
                     cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY,
                     cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]  # fmt: skip
_TO_BGR = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}


def cutout_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB(A) or grey uint8 image (pixels only, no metadata), fast settings."""
    arr = np.ascontiguousarray(image)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, _TO_BGR[arr.shape[2]])
    ok, buf = cv2.imencode(".png", arr, CUTOUT_PNG_PARAMS)
    if not ok:
        raise ValueError(f"could not encode a {image.shape} image as PNG")
    return bytes(buf.tobytes())


def media_root() -> Path:
    from django.conf import settings

    return Path(settings.MEDIA_ROOT)


def run_folder(run_id: int) -> Path:
    return media_root() / "runs" / str(run_id)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def overlay(photo_rgb: np.ndarray, alpha_png: np.ndarray) -> np.ndarray:
    """Photo with the predicted alpha tinted, for side-by-side browsing."""
    a = (alpha_png.astype(np.float32) / 255.0 * OVERLAY_OPACITY)[..., None]
    tint = np.array(OVERLAY_RGB, dtype=np.float32)
    return (photo_rgb.astype(np.float32) * (1 - a) + tint * a).round().astype(np.uint8)


#: Longest item stem used as a file name as is (UTF-8 bytes); the longest suffix added is
#: ".instance-NNN.png", and file systems stop at 255 bytes per name.
MAX_FILE_STEM_BYTES = 120


def file_stem(stem: str) -> str:
    """The name an item's files get: its stem when short and plain (so `alpha/` matches
    `predict --out`), else a digest of it — a user's item name never has to fit a file system."""
    plain = stem not in {"", ".", ".."} and not any(c in stem for c in "/\\\0")
    if plain and len(stem.encode("utf-8")) <= MAX_FILE_STEM_BYTES:
        return stem
    return "item-" + hashlib.sha256(stem.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def write_item_artefacts(
    run_id: int, stem: str, photo_rgb: np.ndarray, post: PostResult
) -> dict[str, object]:
    """Write every file of one item; returns MEDIA_ROOT-relative paths by role."""
    stem = file_stem(stem)
    root = run_folder(run_id)
    rel = f"runs/{run_id}"
    cutout = rgba_cutout(photo_rgb, post.alpha_png)
    files: dict[str, object] = {
        "alpha": f"{rel}/alpha/{stem}.png",
        "alpha_ungated": f"{rel}/alpha_ungated/{stem}.png",
        "cutout": f"{rel}/cutouts/{stem}.png",
        "web_cutout": f"{rel}/web/{stem}.cutout.png",
        "web_overlay": f"{rel}/web/{stem}.overlay.jpg",
        "web_alpha": f"{rel}/web/{stem}.alpha.png",
    }
    alpha_png = encode_png(post.alpha_png)
    _write(root / "alpha" / f"{stem}.png", alpha_png)
    gated_equals_ungated = post.alpha_png is post.ungated_png or not post.gated
    _write(
        root / "alpha_ungated" / f"{stem}.png",
        alpha_png if gated_equals_ungated else encode_png(post.ungated_png),
    )
    cutout_bytes = cutout_png(cutout)
    _write(root / "cutouts" / f"{stem}.png", cutout_bytes)
    small = max(photo_rgb.shape[:2]) <= WEB_MAX_SIDE  # web copy = same pixels: reuse the bytes
    _write(root / "web" / f"{stem}.cutout.png", cutout_bytes if small else web_copy(cutout))
    tinted = overlay(photo_rgb, post.alpha_png)
    _write(root / "web" / f"{stem}.overlay.jpg", web_copy(tinted, fmt="JPEG"))
    _write(root / "web" / f"{stem}.alpha.png", alpha_png if small else web_copy(post.alpha_png))
    for folder in ("cutouts", "web"):  # a retry may find fewer instances than the last attempt
        for stale in (root / folder).glob(f"{glob_escape(stem)}.instance-*.png"):
            stale.unlink(missing_ok=True)
    instances = []
    for n, crop in enumerate(instance_cutouts(photo_rgb, post.alpha_png, post.instances), start=1):
        name = f"{stem}.instance-{n}.png"
        crop_png = cutout_png(crop)
        _write(root / "cutouts" / name, crop_png)
        fits = max(crop.shape[:2]) <= WEB_MAX_SIDE
        _write(root / "web" / name, crop_png if fits else web_copy(crop))
        instances.append({"full": f"{rel}/cutouts/{name}", "web": f"{rel}/web/{name}"})
    files["instances"] = instances
    return files


def remove_item_artefacts(run_id: int, stem: str) -> None:
    """Drop an item's files (it failed on a retry): the folders must hold only scored outputs."""
    stem = file_stem(stem)
    root = run_folder(run_id)
    names = [
        f"alpha/{stem}.png",
        f"alpha_ungated/{stem}.png",
        f"cutouts/{stem}.png",
        f"web/{stem}.cutout.png",
        f"web/{stem}.overlay.jpg",
        f"web/{stem}.alpha.png",
    ]
    for name in names:
        (root / name).unlink(missing_ok=True)
    for folder in ("cutouts", "web"):
        for path in (root / folder).glob(f"{glob_escape(stem)}.instance-*.png"):
            path.unlink(missing_ok=True)


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def alpha_sha256(relative: str) -> str:
    """sha256 of a stored alpha PNG's bytes (what the run digest and reproductions compare).

    The PNGs are encoded deterministically (`encode_png`: pixels only, fixed zlib level, no
    timestamp or metadata chunks), so the same pixels give the same digest.
    """
    return sha256_file(media_root() / relative)


def resolve(relative: str) -> Path:
    """Absolute path of a stored artefact; refuses anything outside MEDIA_ROOT/runs."""
    root = (media_root() / "runs").resolve()
    path = (media_root() / relative).resolve()
    if root not in path.parents:
        raise ValueError(f"{relative!r} is not a run artefact")
    return path


def purge_run_folder(run_id: int) -> bool:
    folder = run_folder(run_id)
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True
