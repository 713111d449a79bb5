"""Per-item records, the ``manifest.csv`` that ``import_dataset`` reads, and the output README.

Why a fixed column list and fixed float formatting: the manifest is part of the byte-identical
output, and later stages (fairness by tone, gating on negatives) read these columns by name.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines import csvsafe

from .monk import contrast_stats

MANIFEST_COLUMNS: tuple[str, ...] = (
    "image",
    "mask",
    "skin_tone",
    "perceived_gender",
    "tags",
    "source",
    "licence",
    "attribute_source",
    "kind",
    "width",
    "height",
    "n_subjects",
    "instances",
    "fg_fraction",
    "bg_luminance",
    "bg_luminance_target",
    "subject_luminance",
    "ring_luminance",
    "contrast",
    "contrast_ratio",
    "michelson",
    "seed",
    "index",
)


@dataclass
class ItemRecord:
    """One generated item: pixels until written, then only its manifest row.

    Luminance columns are CIE L* means over pixels (``bg_luminance``: every non-subject pixel;
    ``ring_luminance``: the band around the subject); ``contrast`` is |subject L* − ring L*|,
    ``contrast_ratio`` the WCAG ratio and ``michelson`` the Michelson contrast of mean luminances.
    They are measured on the pixels before JPEG encoding.
    """

    stem: str
    kind: str
    image: np.ndarray
    mask: np.ndarray
    skin_tone: str
    perceived_gender: str
    tags: list[str]
    source: str
    licence: str
    attribute_source: str
    n_subjects: int
    seed: int
    index: int
    bg_luminance_target: float | None = None
    bg_luminance: float | None = None
    subject_luminance: float | None = None
    ring_luminance: float | None = None
    contrast: float | None = None
    contrast_ratio: float | None = None
    michelson: float | None = None
    fg_fraction: float = 0.0
    width: int = 0
    height: int = 0
    image_rel: str = ""
    mask_rel: str = ""
    instances_rel: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def row(self) -> dict[str, str]:
        def f(x: float | None) -> str:
            return "" if x is None else f"{x:.4f}"

        return {
            "image": self.image_rel,
            "mask": self.mask_rel,
            "skin_tone": self.skin_tone,
            "perceived_gender": self.perceived_gender,
            "tags": ";".join(self.tags),
            "source": self.source,
            "licence": self.licence,
            "attribute_source": self.attribute_source,
            "kind": self.kind,
            "width": str(self.width),
            "height": str(self.height),
            "n_subjects": str(self.n_subjects),
            "instances": self.instances_rel,
            "fg_fraction": f(self.fg_fraction),
            "bg_luminance": f(self.bg_luminance),
            "bg_luminance_target": f(self.bg_luminance_target),
            "subject_luminance": f(self.subject_luminance),
            "ring_luminance": f(self.ring_luminance),
            "contrast": f(self.contrast),
            "contrast_ratio": f(self.contrast_ratio),
            "michelson": f(self.michelson),
            "seed": str(self.seed),
            "index": str(self.index),
        }


def subject_stats(rec: ItemRecord) -> None:
    """Fill size, foreground share and subject/background contrast columns from the pixels."""
    rec.height, rec.width = rec.mask.shape[:2]
    rec.fg_fraction = float((rec.mask > 0).mean())
    cs = contrast_stats(rec.image, rec.mask)
    if cs is None:
        return
    rec.bg_luminance = cs.bg_lstar
    rec.subject_luminance = cs.subject_lstar
    rec.ring_luminance = cs.ring_lstar
    rec.contrast = cs.delta_lstar
    rec.contrast_ratio = cs.wcag
    rec.michelson = cs.michelson


def write_manifest(path: Path, records: list[ItemRecord]) -> None:
    """Write ``manifest.csv`` (UTF-8, ``\\n`` line endings, fixed column order)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csvsafe.DictWriter(fh, fieldnames=list(MANIFEST_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for rec in records:
            writer.writerow(rec.row())


def write_readme(path: Path, command: str, seed: int, records: list[ItemRecord]) -> None:
    """Say what this folder is, so nobody mistakes it for photographs or real attribute labels."""
    kinds = Counter(r.kind for r in records)
    licences = sorted({r.licence for r in records})
    text = f"""# Synthetic subject-lifting set

Everything in this folder is **synthetic**, made by `pipelines.synth`. Do not report results on it
as results on real photographs.

- Command: `{command}` (OUT is this folder)
- Seed: {seed} — the same command and seed give byte-identical files.
- Items: {len(records)} ({kinds.get("composite", 0)} composites of real foregrounds,
  {kinds.get("person", 0)} drawn people, {kinds.get("negative", 0)} no-subject negatives)
- Licences: {"; ".join(licences) if licences else "none"}

## Layout

- `images/<stem>.jpg|png`, `masks/<stem>.png` (8-bit, 0/255; empty for no-subject items).
- `instances/<stem>/<k>.png`: one mask per subject when an item has several (k = 1 is the
  bottom-most, pasted first); instance masks hold only the visible part, are disjoint, and their
  union is the item mask. The manifest column `instances` points to the folder.
- `manifest.csv`: `image,mask,skin_tone,perceived_gender,tags,source,licence,…` plus measurement
  columns (`bg_luminance`, `contrast`, `contrast_ratio`, … as CIE L* / WCAG values).

## Labels

- Composites of real foregrounds: `skin_tone` and `perceived_gender` are `unknown`.
- No-subject items (tag `no_subject`): both are `not_applicable`; the mask is empty.
- Drawn people (tag `synthetic_labels`): the attribute labels are **synthetic** — the skin colour is
  a Monk Skin Tone swatch and the gender is a drawing choice (hair length, shoulders), not anyone's
  identity. Tones and genders cycle evenly; every tone gets the same background images, crops and
  luminance targets, so background luminance does not differ by tone. Subject/background contrast
  does differ by tone (a dark tone on a dark background is hard) and is recorded per item.
- Masks equal the composited alpha exactly (hard paste, no feathering).
"""
    path.write_text(text, encoding="utf-8")
