"""Files a run keeps per item, stored as `runs/<run_id>/…` (`evalsite.core.files`: under
MEDIA_ROOT, or keys in the bucket), laid out like `predict`'s folders, and the pictures rendered
from them when someone looks.

Why this layout: `runs/<id>/alpha/` is exactly what `python -m pipelines.predict --out` writes
(one 8-bit `<stem>.png` per image, gated) and `alpha_ungated/` what `--no-gate` writes, so
`python -m pipelines.metrics --pred runs/<id>/alpha --gt <masks>` reproduces the run page. Where
the gate changed nothing (most images) the two are the same bytes: on the filesystem
`alpha_ungated/<stem>.png` is a hard link to the gated file; in a bucket there is one object,
and the result's record (`artefacts["alpha_ungated"]`, which every reader goes by) names it. Writes
go to a temporary name and are renamed (a bucket replaces an object whole), so a retried chunk
overwrites a file atomically and a crash never leaves half a PNG that a later aggregation would
read; the names are the run's id and the item's stem, so a retry writes the same names.

Why cutouts, overlays and web copies are rendered on request and not stored: they are a pure
function of the stored photo and the stored alpha PNG, most of them are never opened (a reviewer
looks at a few dozen items of a run of thousands), and encoding them cost more of a chunk's time
than the model. The request that shows one renders it (a few ms for a set photo, a few hundred for
a 12 MP one) and writes nothing — GET handlers never write; the browser keeps it (`ETag` from the
alpha file, `Cache-Control`), so it is rendered again only for a new viewer or after a retry
rewrote the alpha. Runs made before this stored those files; they are served as stored.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from evalsite.core import files
from evalsite.core.errors import NotFound
from pipelines.hashing import sha256_bytes, sha256_file
from pipelines.metrics.io import read_gray8
from pipelines.payloads import JsonObject
from pipelines.postprocess.cutout import (
    WEB_MAX_SIDE,
    encode_png,
    instance_cutouts,
    rgba_cutout,
    web_copy,
)
from pipelines.postprocess.instances import MIN_INSTANCE_AREA_FRACTION, separate_instances
from pipelines.postprocess.pipeline import PostResult
from pipelines.runners.images import load_image_rgb

#: Overlay tint of the predicted foreground on web copies (RGB) and its opacity.
OVERLAY_RGB = (255, 64, 160)
OVERLAY_OPACITY = 0.45


#: zlib level, strategy and row filter of the RGBA cutouts, encoded by OpenCV's libpng: level 1
#: with Huffman-only coding encodes a photo-sized RGBA PNG ~2.8× faster than Pillow at level 1,
#: and ~10× faster than Pillow's default 6, for ~1 % fewer bytes than Pillow's level 1; the fixed
#: "Sub" row filter instead of libpng's per-row trial of all five makes it another 1.7× faster
#: for 4 % more bytes (measured on pascal-s-demo: 11 vs 19 ms CPU and 393 vs 376 KiB per cutout;
#: cutouts are now rendered per request, where encoding time is what the viewer waits for; PNG and
#: not WebP/JPEG because the cutout must show exactly the scored alpha, losslessly). Pixels are
#: identical at any setting; the scored alpha PNGs keep `encode_png`, what `predict` writes.
CUTOUT_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1,
                     cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY,
                     cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]  # fmt: skip


def cutout_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB(A) or grey uint8 image (pixels only, no metadata), fast settings."""
    return encode_png(image, CUTOUT_PNG_PARAMS)


def run_prefix(run_id: int) -> str:
    """The stored name of a run's folder: its files are `runs/<id>/…`."""
    return f"runs/{run_id}"


def run_file(relative: str) -> Path:
    """A local path of a stored run file (on the filesystem the file itself; with a bucket this
    worker's cached copy, kept per ETag since a retried chunk may rewrite it)."""
    return files.local_path(run_name(relative))


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
    return "item-" + sha256_bytes(stem.encode("utf-8", "surrogatepass"))[:32]


def write_item_artefacts(run_id: int, stem: str, post: PostResult) -> tuple[dict[str, object], str]:
    """Write an item's scored alpha PNGs; returns its `ItemResult.artefacts` (MEDIA_ROOT-relative
    paths by role, and one entry per instance, whose crops are rendered on request) and its
    `ItemResult.alpha_sha256`, hashed from the bytes written (the run's digest then reads no
    file back)."""
    stem = file_stem(stem)
    rel = run_prefix(run_id)
    alpha_png = encode_png(post.alpha_png)
    alpha = files.save_bytes(f"{rel}/alpha/{stem}.png", alpha_png)
    ungated = f"{rel}/alpha_ungated/{stem}.png"
    if post.alpha_png is post.ungated_png or not post.gated:  # the gate changed nothing
        ungated = files.save_same(ungated, alpha, alpha_png)
    else:
        files.save_bytes(ungated, encode_png(post.ungated_png))
    stored: dict[str, object] = {
        "alpha": alpha,
        "alpha_ungated": ungated,
        "instances": [{"n": n} for n in range(1, post.instance_count + 1)],
    }
    return stored, sha256_bytes(alpha_png)


def remove_item_artefacts(run_id: int, stem: str) -> None:
    """Drop an item's files (it failed on a retry): the folders must hold only scored outputs."""
    stem = file_stem(stem)
    for name in (f"alpha/{stem}.png", f"alpha_ungated/{stem}.png"):
        files.delete(f"{run_prefix(run_id)}/{name}")


#: Pictures of a result rendered from the photo and the alpha PNG when asked for (besides
#: `instance-N` / `instance_web-N`, one whole-resolution / web-size crop per instance).
VIEW_ROLES = ("cutout", "web_cutout", "web_overlay", "web_alpha")
PNG, JPEG = "image/png", "image/jpeg"


@dataclass(frozen=True)
class ItemView:
    """A result's picture: where its alpha is and how to render `role` from it. `photo` is the
    stored name of the item's photo."""

    artefacts: dict[str, Any]
    photo: str
    role: str
    min_instance_area: float

    def _alpha_name(self) -> str:
        rel = self.artefacts.get("alpha")
        if not rel:
            raise NotFound("This result has no such file (the item failed).")
        return _name_or_missing(str(rel))

    def _stored(self) -> str | None:
        """The file an older run stored for this role, if it is there."""
        if self.role.startswith(("instance-", "instance_web-")):
            kind, _, n = self.role.partition("-")
            entry = self.artefacts["instances"][int(n) - 1]
            rel = entry.get("web" if kind == "instance_web" else "full")
        else:
            rel = self.artefacts.get(self.role)
        if not rel:
            return None
        name = _name_or_missing(str(rel))
        return name if files.exists(name) else None

    def etag(self) -> str:
        """Changes whenever the alpha file does (a retried chunk), so a cached copy is current."""
        try:
            stamp = files.fingerprint(self._alpha_name())
        except OSError:
            raise NotFound("The file is gone (artefacts of old runs are purged).") from None
        return f'"{stamp}-{self.role}"'

    def render(self) -> tuple[bytes, str]:
        """(bytes, content type); the same pixels a run used to store for the role."""
        stored = self._stored()
        if stored is not None:
            return files.read_bytes(stored), JPEG if stored.endswith(".jpg") else PNG
        try:
            alpha_bytes = files.read_bytes(self._alpha_name())
            alpha = read_gray8(io.BytesIO(alpha_bytes))
            if self.role == "web_alpha" and max(alpha.shape) <= WEB_MAX_SIDE:
                return alpha_bytes, PNG
            if self.role == "web_alpha":
                return web_copy(alpha), PNG
            with files.open_read(self.photo) as fh:  # streamed: a page keeps no local copy
                photo = load_image_rgb(fh)
        except FileNotFoundError:
            raise NotFound("The file is gone (artefacts of old runs are purged).") from None
        return render_view(photo, alpha, self.role, min_instance_area=self.min_instance_area)


def _name_or_missing(relative: str) -> str:
    try:
        return run_name(relative)
    except ValueError:
        raise NotFound("Not a run file.") from None


def item_view(
    artefacts: JsonObject | None,
    photo: str | None,
    role: str,
    *,
    min_instance_area: float = MIN_INSTANCE_AREA_FRACTION,
) -> ItemView:
    """The picture `role` of a result, checked: a known role, an instance the result has."""
    stored: dict[str, Any] = dict(artefacts or {})  # the result's own JSON (paths)
    if role.startswith(("instance-", "instance_web-")):
        count = len(stored.get("instances") or [])
        n = role.partition("-")[2]
        if not (n.isascii() and n.isdigit() and len(n) <= 6 and 1 <= int(n) <= count):
            raise NotFound("No such instance.")
    elif role not in VIEW_ROLES:
        raise NotFound(f"Unknown file {role!r}.")
    return ItemView(stored, str(photo or ""), role, min_instance_area)


def min_instance_area(postprocess: JsonObject | None) -> float:
    """The smallest instance (share of the photo) a run with these post-processing settings
    (`EvalRun.postprocess`) split its outputs at."""
    value = (postprocess or {}).get("min_instance_area", MIN_INSTANCE_AREA_FRACTION)
    return float(value) if isinstance(value, int | float | str) else MIN_INSTANCE_AREA_FRACTION


def render_view(
    photo_rgb: np.ndarray, alpha_png: np.ndarray, role: str, *, min_instance_area: float
) -> tuple[bytes, str]:
    """Encode one browsing picture of a photo and its 8-bit alpha: (bytes, content type)."""
    small = max(photo_rgb.shape[:2]) <= WEB_MAX_SIDE
    if role in ("cutout", "web_cutout"):
        cutout = rgba_cutout(photo_rgb, alpha_png)
        return (cutout_png(cutout) if role == "cutout" or small else web_copy(cutout)), PNG
    if role == "web_overlay":
        return web_copy(overlay(photo_rgb, alpha_png), fmt="JPEG"), JPEG
    kind, _, n = role.partition("-")
    instances = separate_instances(alpha_png, min_area_fraction=min_instance_area)
    crops = instance_cutouts(photo_rgb, alpha_png, instances)
    if not 1 <= int(n) <= len(crops):  # the alpha file was replaced since the result was scored
        raise NotFound("No such instance.")
    crop = crops[int(n) - 1]
    fits = max(crop.shape[:2]) <= WEB_MAX_SIDE
    return (cutout_png(crop) if kind == "instance" or fits else web_copy(crop)), PNG


def alpha_sha256(relative: str) -> str:
    """sha256 of a stored alpha PNG's bytes (what the run digest and reproductions compare).

    The PNGs are encoded deterministically (`encode_png`: pixels only, fixed zlib settings, no
    timestamp or metadata chunks), so the same pixels give the same digest. (Runs made before the
    alpha PNGs were run-length coded stored other bytes for the same pixels: their digests differ
    from a new run's although every per-image number is the same.)
    """
    if files.is_local():
        return sha256_file(files.local_path(run_name(relative)))
    return sha256_bytes(files.read_bytes(run_name(relative)))


def run_name(relative: str) -> str:
    """The stored name of a run artefact, checked: refuses anything outside `runs/`."""
    parts = relative.split("/")
    if (
        len(parts) < 3
        or parts[0] != "runs"
        or any(p in {"", ".", ".."} for p in parts)
        or "\\" in relative
        or "\0" in relative
    ):
        raise ValueError(f"{relative!r} is not a run artefact")
    return relative


def purge_run_folder(run_id: int) -> bool:
    return files.delete_prefix(run_prefix(run_id))
