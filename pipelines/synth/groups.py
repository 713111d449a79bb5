"""Groups of drawn people with one instance mask each: a set on which instance lifts are scored.

`python -m pipelines.synth.groups --out DIR [--n 12] [--seed 1] [--size 480x360]` writes a folder
that `import_dataset` reads (images, masks, `instances/<stem>/<k>.png`, manifest.csv, README.md).

Why this exists: stickers lift each person of a photo separately, so the platform scores
predicted instances against ground-truth instances; the other demo sets hold one subject per
image. People are drawn back to front on procedural backgrounds (no source photos needed), side
by side with some overlap; each instance mask keeps only what is visible in front of the people
behind it, so instance masks are disjoint and their union is the item mask. A layout where
someone is mostly hidden (less than `MIN_VISIBLE` of their silhouette) is drawn again. Every
item has its own generator seeded from (seed, index): same arguments, byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from .generate import _prepare_out, _write_item
from .manifest import ItemRecord, subject_stats, write_manifest
from .monk import GENDERS
from .negatives import PROCEDURAL_KINDS, make_negative
from .people import draw_person, random_person_spec

_GROUP = 6  # kind code mixed into per-item seeds (generate.py uses 1-5); never renumber
GROUP_SIZES, GROUP_PROBS = (2, 3, 4), (0.45, 0.35, 0.2)
#: A person must keep this share of their silhouette visible, or the layout is drawn again.
MIN_VISIBLE = 0.4
LAYOUT_TRIES = 20


def draw_group(
    bg: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[str]]:
    """(image, 0/255 mask, visible instance masks back to front, sources) of `count` people."""
    for _ in range(LAYOUT_TRIES):
        image, fulls, notes = bg, [], []
        for k in range(count):
            tone, gender = int(rng.integers(1, 11)), GENDERS[int(rng.integers(0, len(GENDERS)))]
            spec = random_person_spec(tone, gender, rng)
            slot = (k + 0.5) / count + float(rng.uniform(-0.06, 0.06))
            spec = replace(
                spec,
                center_x=slot,
                height=float(rng.uniform(0.5, 0.8)),
                top=float(rng.uniform(0.08, 0.3)),
                arms_out=0.0,  # arms against the body: one connected silhouette each
            )
            image, mask = draw_person(image, spec, rng)
            fulls.append(mask > 0)
            notes.append(f"tone={tone} gender={gender} hair={spec.hair}")
        visible = []
        for k, full in enumerate(fulls):
            above = np.zeros_like(full)
            for later in fulls[k + 1 :]:
                above |= later
            visible.append(full & ~above)
        if all(v.sum() >= MIN_VISIBLE * f.sum() > 0 for v, f in zip(visible, fulls, strict=True)):
            union = np.zeros_like(fulls[0])
            for v in visible:
                union |= v
            return image, union.astype(np.uint8) * 255, visible, notes
    raise RuntimeError(f"no layout of {count} people kept everyone visible in {LAYOUT_TRIES} tries")


def group_item(seed: int, index: int, size: tuple[int, int]) -> tuple[ItemRecord, list[np.ndarray]]:
    rng = np.random.default_rng([seed, _GROUP, index])
    count = int(rng.choice(GROUP_SIZES, p=GROUP_PROBS))
    kind = PROCEDURAL_KINDS[int(rng.integers(0, len(PROCEDURAL_KINDS)))]
    bg, _ = make_negative(size, rng, kind)
    image, mask, instances, notes = draw_group(bg, count, rng)
    rec = ItemRecord(
        stem=f"group_{index:05d}",
        kind="group",
        image=image,
        mask=mask,
        # several people: no single tone or gender describes the item
        skin_tone="unknown",
        perceived_gender="unknown",
        tags=["synthetic", "group", "multi"],
        source=f"synthetic: group of {count} ({'; '.join(notes)}) bg=procedural {kind}",
        licence="generated",
        attribute_source="manifest",
        n_subjects=count,
        seed=seed,
        index=index,
    )
    subject_stats(rec)
    return rec, instances


README = """# Synthetic groups (instance lifts)

Everything in this folder is **synthetic**, made by `pipelines.synth.groups`. Do not report results
on it as results on real photographs.

- Command: `{command}`
- Items: {n}, each a group of 2-4 drawn people on a procedural background (noise, gradient or
  stripes), {sizes}.
- `instances/<stem>/<k>.png`: one mask per person (k = 1 is the back-most, drawn first), holding
  only the visible part; instance masks are disjoint and their union is `masks/<stem>.png`.
- Attribute columns are `unknown`: a group has no single skin tone or gender.
- Licence: generated.
"""


def generate_groups(out: Path, n: int, seed: int, size: tuple[int, int] = (480, 360)) -> None:
    """Write `n` group items to `out` (created; an existing generated folder is replaced)."""
    _prepare_out(out, overwrite=True)
    records = []
    counts: dict[int, int] = {}
    for index in range(n):
        rec, instances = group_item(seed, index, size)
        counts[rec.n_subjects] = counts.get(rec.n_subjects, 0) + 1
        _write_item(out, rec, instances, "jpg")
        records.append(rec)
    write_manifest(out / "manifest.csv", records)
    sizes = ", ".join(f"{v} of {k} people" for k, v in sorted(counts.items()))
    w, h = size
    command = f"python -m pipelines.synth.groups --out OUT --n {n} --seed {seed} --size {w}x{h}"
    (out / "README.md").write_text(README.format(command=command, n=n, sizes=sizes))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.synth.groups", description=__doc__)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", default="480x360", help="WxH")
    args = parser.parse_args(argv)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size must be WxH, got {args.size!r}")
    if args.n < 1 or w < 64 or h < 64:
        parser.error("--n must be >= 1 and --size at least 64x64")
    generate_groups(args.out, args.n, args.seed, (w, h))
    print(f"{args.n} group items -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
