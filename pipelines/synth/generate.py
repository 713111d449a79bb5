"""Build a synthetic held-out set folder that ``import_dataset`` can read.

Why the structure below: every item gets its own ``np.random.Generator`` seeded from
``(seed, kind, index)``, so an item's pixels do not depend on how many other items were asked for,
and the same arguments always give byte-identical files. Synthetic people are generated in strata
of 10 (one per Monk tone) that share background image, crop, luminance target, framing, clothing
and light, so background luminance is identically distributed for every tone by construction.
"""

from __future__ import annotations

import functools
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .backgrounds import background_crop, natural_size, rescale_luminance
from .composite import composite_subjects
from .manifest import ItemRecord, subject_stats, write_manifest, write_readme
from .monk import GENDERS, mean_lstar
from .negatives import PROCEDURAL_KINDS, make_negative
from .people import draw_person, random_person_spec
from .sources import (
    SourceError,
    SourceFolder,
    SourceItem,
    licence_for,
    list_bg_folder,
    list_fg_folder,
    load,
)

# Kind codes mixed into per-item seeds; never renumber them (it would change every output).
_COMPOSITE, _PERSON, _NEGATIVE, _PERSON_LAYOUT, _PERSON_STRATA, _NEGATIVE_ORDER = 1, 2, 3, 4, 5, 6
#: Background L* targets for synthetic people are stratified over this range: dark rooms to bright
#: walls, avoiding the extremes where an 8-bit gamma cannot reach the target.
LUMINANCE_RANGE = (20.0, 85.0)
#: Foregrounds under 1 % of their image are skipped: after jitter they shrink to a few pixels.
MIN_FG_FRACTION = 0.01
#: Subjects per composite and their probabilities (most items single, as in the real sets).
SUBJECT_COUNTS, SUBJECT_PROBS = (1, 2, 3), (0.7, 0.2, 0.1)
MULTI_SCALE = (0.3, 0.6)
JPEG_QUALITY = 95
PNG_COMPRESSION = 3  # fast; the level does not change pixel values, only file size
OUR_OUTPUTS = ("images", "masks", "instances", "manifest.csv", "README.md")


@dataclass(frozen=True)
class GenerateOptions:
    """All arguments of a run; also what the README records as the command line."""

    fg_dir: Path
    bg_dir: Path
    n: int
    seed: int
    size: tuple[int, int] | None = None
    people: int = 0
    negatives: int = 0
    image_format: str = "jpg"

    def command(self) -> str:
        parts = [
            "python -m pipelines.synth",
            f"--fg {self.fg_dir}",
            f"--bg {self.bg_dir}",
            f"--n {self.n}",
            f"--seed {self.seed}",
            "--out OUT",
        ]
        if self.size is not None:
            parts.append(f"--size {self.size[0]}x{self.size[1]}")
        parts += [f"--people {self.people}", f"--negatives {self.negatives}"]
        if self.image_format != "jpg":
            parts.append(f"--image-format {self.image_format}")
        return " ".join(parts)


@dataclass
class _Sources:
    fg: SourceFolder
    bg: SourceFolder
    same: bool  # fg and bg are the same folder: never use an item as its own background
    fg_fraction: dict[Path, float] = field(default_factory=dict)


def _rng(seed: int, kind: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, kind, index])


@functools.lru_cache(maxsize=8)
def _background_order(seed: int, count: int) -> np.ndarray:
    """The order background negatives take their source photos in (a permutation of `count`)."""
    return np.random.default_rng([seed, _NEGATIVE_ORDER]).permutation(count)


def _pick_fg(src: _Sources, rng: np.random.Generator) -> tuple[SourceItem, np.ndarray, np.ndarray]:
    for _ in range(64):
        item = src.fg.items[int(rng.integers(0, len(src.fg.items)))]
        frac = src.fg_fraction.get(item.image_path)
        if frac is not None and frac < MIN_FG_FRACTION:
            continue
        rgb, mask = load(item)
        assert mask is not None
        src.fg_fraction[item.image_path] = float(mask.mean())
        if mask.mean() >= MIN_FG_FRACTION:
            return item, rgb, mask
    raise SourceError(f"--fg {src.fg.path}: could not find a mask with ≥ 1 % foreground")


def _pick_bg(src: _Sources, rng: np.random.Generator, avoid: set[Path]) -> SourceItem:
    items = src.bg.items
    for _ in range(16):
        item = items[int(rng.integers(0, len(items)))]
        if item.image_path not in avoid or len(items) == 1:
            return item
    return item


def _composite_item(src: _Sources, opts: GenerateOptions, index: int) -> tuple[ItemRecord, list]:
    rng = _rng(opts.seed, _COMPOSITE, index)
    count = int(rng.choice(SUBJECT_COUNTS, p=SUBJECT_PROBS))
    picks = [_pick_fg(src, rng) for _ in range(count)]
    bg_item = _pick_bg(src, rng, {p[0].image_path for p in picks} if src.same else set())
    bg_rgb, bg_mask = load(bg_item)
    size = opts.size or natural_size(bg_rgb.shape)
    bg, _ = background_crop(bg_rgb, bg_mask, size, rng)
    jitter = {"scale": MULTI_SCALE} if count > 1 else {}
    res = composite_subjects([(p[1], p[2]) for p in picks], bg, rng, **jitter)
    kept = [picks[k][0] for k in res.kept]
    multi = len(kept) > 1
    rec = ItemRecord(
        stem=f"comp_{index:05d}",
        kind="composite",
        image=res.image,
        mask=res.mask,
        skin_tone="unknown",
        perceived_gender="unknown",
        tags=["synthetic", "composite"] + (["multi"] if multi else []),
        source=f"synthetic: fg={'+'.join(it.ref for it in kept)} bg={bg_item.ref}",
        licence=licence_for(src.fg, src.bg),
        attribute_source="manifest",
        n_subjects=len(kept),
        seed=opts.seed,
        index=index,
    )
    subject_stats(rec)
    return rec, (res.instances if multi else [])


def _person_item(src: _Sources, opts: GenerateOptions, i: int, index: int) -> ItemRecord:
    tone, gender, stratum = i % 10 + 1, GENDERS[i % len(GENDERS)], i // 10
    n_strata = max(1, math.ceil(opts.people / 10))
    order = _rng(opts.seed, _PERSON_STRATA, 0).permutation(n_strata)
    layout = _rng(opts.seed, _PERSON_LAYOUT, stratum)
    rng = _rng(opts.seed, _PERSON, i)
    lo, hi = LUMINANCE_RANGE
    target = lo + (hi - lo) * (order[stratum] + layout.uniform()) / n_strata
    bg_item = src.bg.items[int(layout.integers(0, len(src.bg.items)))]
    bg_rgb, bg_mask = load(bg_item)
    size = opts.size or natural_size(bg_rgb.shape)
    bg, _ = background_crop(bg_rgb, bg_mask, size, layout)
    bg = rescale_luminance(bg, target)
    spec = random_person_spec(tone, gender, rng, layout)
    image, mask = draw_person(bg, spec, rng)
    rec = ItemRecord(
        stem=f"person_{index:05d}",
        kind="person",
        image=image,
        mask=mask,
        skin_tone=str(tone),
        perceived_gender=gender,
        tags=["synthetic", "person", "synthetic_labels"],
        source=f"synthetic: person tone={tone} gender={gender} hair={spec.hair} bg={bg_item.ref}",
        licence=licence_for(src.bg),
        attribute_source="synthetic",
        n_subjects=1,
        seed=opts.seed,
        index=index,
        bg_luminance_target=float(target),
    )
    subject_stats(rec)
    return rec


def _negative_item(src: _Sources, opts: GenerateOptions, i: int, index: int) -> ItemRecord:
    rng = _rng(opts.seed, _NEGATIVE, i)
    folder = src.bg if src.bg.has_masks else src.fg  # a real negative needs a salient mask
    masked = folder.masked
    kind = (
        "background"
        if i % 2 == 0 and masked
        else PROCEDURAL_KINDS[(i // 2) % 3 if masked else i % 3]
    )
    if kind == "background":
        # Each background negative has a source photo of its own: a seeded shuffle walked in
        # order, mirrored on the second pass. Drawn at random, a photo comes up twice in a few
        # hundred negatives, and at its natural size its clean crop is the same one both times:
        # two identical photos, the second of which an import skips as a duplicate.
        k = i // 2
        item = masked[int(_background_order(opts.seed, len(masked))[k % len(masked)])]
        rgb, m = load(item)
        assert m is not None  # ``masked`` only lists items with a mask
        mirrored = bool((k // len(masked)) % 2)
        if mirrored:
            rgb, m = np.ascontiguousarray(rgb[:, ::-1]), np.ascontiguousarray(m[:, ::-1])
        size = opts.size or natural_size(rgb.shape)
        image, _ = make_negative(size, rng, kind, source=(rgb, m))
        source = (
            f"synthetic: negative bg={item.ref}{' mirrored' if mirrored else ''} "
            "(crop outside dilated mask, rest inpainted)"
        )
        licence = licence_for(folder)
    else:
        size = opts.size or ((640, 480) if rng.random() < 0.5 else (480, 640))
        image, _ = make_negative(size, rng, kind)
        source, licence = f"synthetic: negative procedural={kind}", licence_for()
    mask = np.zeros(image.shape[:2], dtype=np.uint8)
    rec = ItemRecord(
        stem=f"neg_{index:05d}",
        kind="negative",
        image=image,
        mask=mask,
        skin_tone="not_applicable",
        perceived_gender="not_applicable",
        tags=["synthetic", "no_subject", "background" if kind == "background" else "procedural"],
        source=source,
        licence=licence,
        attribute_source="manifest",
        n_subjects=0,
        seed=opts.seed,
        index=index,
    )
    rec.bg_luminance = mean_lstar(image)
    return rec


def _encode(path: Path, arr: np.ndarray, fmt: str) -> None:
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    if fmt == "jpg":
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY, cv2.IMWRITE_JPEG_OPTIMIZE, 0]
    else:
        params = [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]
    ok, buf = cv2.imencode("." + fmt, arr, params)
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def _write_item(out: Path, rec: ItemRecord, instances: list[np.ndarray], fmt: str) -> None:
    rec.height, rec.width = rec.mask.shape[:2]
    rec.image_rel = f"images/{rec.stem}.{fmt}"
    rec.mask_rel = f"masks/{rec.stem}.png"
    _encode(out / rec.image_rel, rec.image, fmt)
    _encode(out / rec.mask_rel, rec.mask, "png")
    if instances:
        folder = out / "instances" / rec.stem
        folder.mkdir(parents=True, exist_ok=True)
        for k, inst in enumerate(instances, start=1):  # 1 = bottom-most (pasted first)
            _encode(folder / f"{k}.png", np.where(inst, 255, 0).astype(np.uint8), "png")
        rec.instances_rel = f"instances/{rec.stem}"
    rec.image = rec.mask = np.empty(0)  # free pixels once written


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SourceError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise SourceError(f"--out {out} is not empty; choose a new folder or pass --overwrite")
        for name in OUR_OUTPUTS:  # remove only what a previous run of ours wrote
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)


def generate(
    fg_dir: Path | str,
    bg_dir: Path | str | None,
    out_dir: Path | str,
    n: int,
    seed: int,
    size: tuple[int, int] | None = None,
    people: int = 0,
    negatives: int = 0,
    *,
    image_format: str = "jpg",
    overwrite: bool = False,
) -> Path:
    """Write ``n`` items to ``out_dir``: ``n - people - negatives`` composites, then the people,
    then the negatives. ``bg_dir`` None uses the foreground folder (its masks let crops avoid
    objects). ``size`` is (W, H); None keeps each background's natural size (long side ≤ 640).

    Returns the output folder (with ``manifest.csv`` and ``README.md``). Raises ``SourceError`` for
    unusable inputs, before anything is written.
    """
    if n < 0 or people < 0 or negatives < 0:
        raise SourceError("--n, --people and --negatives must be ≥ 0")
    if people + negatives > n:
        raise SourceError(f"--people ({people}) + --negatives ({negatives}) exceed --n ({n})")
    if image_format not in ("jpg", "png"):
        raise SourceError(f"image format must be jpg or png, got {image_format!r}")
    if size is not None and (size[0] < 16 or size[1] < 16):
        raise SourceError(f"--size must be at least 16x16, got {size[0]}x{size[1]}")
    fg = list_fg_folder(Path(fg_dir))
    bg = list_bg_folder(Path(bg_dir)) if bg_dir is not None else list_bg_folder(fg.path)
    opts = GenerateOptions(
        Path(fg_dir),
        Path(bg_dir if bg_dir is not None else fg_dir),
        n,
        seed,
        size,
        people,
        negatives,
        image_format,
    )
    out = Path(out_dir)
    _prepare_out(out, overwrite)
    src = _Sources(fg, bg, fg.path.resolve() == bg.path.resolve())
    n_comp = n - people - negatives
    records: list[ItemRecord] = []
    for i in range(n_comp):
        rec, inst = _composite_item(src, opts, i)
        _write_item(out, rec, inst, image_format)
        records.append(rec)
    for i in range(people):
        rec = _person_item(src, opts, i, n_comp + i)
        _write_item(out, rec, [], image_format)
        records.append(rec)
    for i in range(negatives):
        rec = _negative_item(src, opts, i, n_comp + people + i)
        _write_item(out, rec, [], image_format)
        records.append(rec)
    write_manifest(out / "manifest.csv", records)
    write_readme(out / "README.md", opts.command(), opts.seed, records)
    return out
