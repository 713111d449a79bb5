"""Planning an import: which items a folder (and its manifest) holds, before any pixel is read.

Fatal problems raise `ImportRejected` (unreadable or wrong-column manifest, no images/ folder);
item-level problems (image without mask, duplicate stem, unknown attribute value, path outside the
set) become skipped entries and the import goes on with the rest.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from evalsite.datasets import vocab
from evalsite.datasets.errors import ImportRejected, entry
from pipelines.parse import int_or_none

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
REQUIRED_COLUMNS = ("image", "mask")
ATTRIBUTE_COLUMNS = ("skin_tone", "perceived_gender")
# Columns the import interprets itself; every other column is kept as item metadata.
CONSUMED_COLUMNS = frozenset(
    {*REQUIRED_COLUMNS, *ATTRIBUTE_COLUMNS, "tags", "attribute_source", "instances"}
)
MAX_README_CHARS = 20_000
TONE_ACTION = "use a Monk scale number 1-10, not_applicable (no person) or unknown (can't tell)"
GENDER_ACTION = "use woman, man, other, not_applicable (no person) or unknown (can't tell)"


@dataclass
class PlannedItem:
    stem: str
    image: Path
    image_label: str
    mask: Path
    mask_label: str
    instances: list[tuple[Path, str]] = field(default_factory=list)
    skin_tone: str | None = None
    perceived_gender: str | None = None
    attribute_source: str = "manifest"
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    items: list[PlannedItem]
    skipped: list[dict[str, str]]
    has_attributes: bool
    manifest_label: str | None
    readme: str
    candidates: int


def _listing(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _instances_in(folder: Path, root: Path) -> list[tuple[Path, str]]:
    def key(p: Path) -> tuple[int, str]:
        number = int_or_none(p.stem)  # `3.png` sorts as 3; `².png` and `x.png` after numbers
        return (1 << 63 if number is None else number, p.name)

    files = sorted((p for p in _listing(folder) if p.suffix.lower() in IMAGE_EXTS), key=key)
    return [(p, p.relative_to(root).as_posix()) for p in files]


def _read_readme(root: Path) -> str:
    for name in ("README.md", "README.txt", "README"):
        path = root / name
        if path.is_file():
            return path.read_text(encoding="utf-8", errors="replace")[:MAX_README_CHARS]
    return ""


def plan_import(root: Path, manifest: Path | None) -> Plan:
    if manifest is None and (root / "manifest.csv").is_file():
        manifest = root / "manifest.csv"
    plan = _plan_manifest(root, manifest) if manifest else _plan_folder(root)
    _refuse_case_twins(plan)
    plan.readme = _read_readme(root)
    return plan


def _refuse_case_twins(plan: Plan) -> None:
    """Stems equal up to case (`S0`, `s0`) are fatal: one file on a case-insensitive disk, and
    two items a reader cannot tell apart in a list; every pair is named."""
    first: dict[str, PlannedItem] = {}
    problems: list[dict[str, str]] = []
    for item in plan.items:
        seen = first.setdefault(item.stem.casefold(), item)
        if seen is not item:
            problems.append(
                entry(
                    item.image_label,
                    f"stem {item.stem!r} differs from {seen.stem!r} ({seen.image_label}) only in "
                    "upper/lower case",
                    "rename one of the two images (and its mask)",
                )
            )
    if problems:
        raise ImportRejected(problems)


def _plan_folder(root: Path) -> Plan:
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir():
        raise ImportRejected(
            [
                entry(
                    root.name or str(root),
                    "no images/ folder and no manifest.csv",
                    "put images/<stem>.jpg and masks/<stem>.png in the folder, or pass --manifest",
                )
            ]
        )
    masks: dict[str, Path] = {}
    skipped: list[dict[str, str]] = []
    for path in _listing(masks_dir):
        if path.stem in masks:
            skipped.append(
                entry(
                    f"masks/{path.name}",
                    f"a second mask for stem {path.stem!r}",
                    "keep one mask per stem",
                )
            )
            continue
        masks[path.stem] = path
    items: list[PlannedItem] = []
    seen: set[str] = set()
    images = _listing(images_dir)
    for path in images:
        label = f"images/{path.name}"
        if path.stem in seen:
            skipped.append(
                entry(label, f"a second image for stem {path.stem!r}", "keep one image per stem")
            )
            continue
        seen.add(path.stem)
        mask = masks.get(path.stem)
        if mask is None:
            skipped.append(
                entry(
                    label,
                    "image without mask",
                    f"add masks/{path.stem}.png (an all-black mask means no subject)",
                )
            )
            continue
        items.append(
            PlannedItem(
                stem=path.stem,
                image=path,
                image_label=label,
                mask=mask,
                mask_label=f"masks/{mask.name}",
                instances=_instances_in(root / "instances" / path.stem, root),
            )
        )
    for stem, mask in masks.items():
        if stem not in seen:
            skipped.append(
                entry(
                    f"masks/{mask.name}",
                    "mask without image",
                    f"add images/{stem}.jpg or remove the mask",
                )
            )
    return Plan(items, skipped, False, None, "", len(images))


def _read_manifest(manifest: Path) -> tuple[list[str], list[dict[str, str]]]:
    label = manifest.name
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ImportRejected(
            [entry(label, "manifest file not found", "check the --manifest path")]
        ) from None
    except (UnicodeDecodeError, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)  # no server path
        raise ImportRejected(
            [
                entry(
                    label,
                    f"manifest is not readable UTF-8 text ({why})",
                    "save the manifest as UTF-8 CSV",
                )
            ]
        ) from None
    try:
        reader = csv.DictReader(text.splitlines())
        header = [h.strip() for h in (reader.fieldnames or [])]
        rows = [
            {(k or "").strip(): (v or "") for k, v in row.items() if k is not None}
            for row in reader
        ]
    except csv.Error as exc:
        raise ImportRejected(
            [
                entry(
                    label,
                    f"manifest is not valid CSV ({exc})",
                    "save it as comma-separated CSV with a header row",
                )
            ]
        ) from None
    if not header:
        raise ImportRejected(
            [
                entry(
                    label,
                    "manifest is empty (no header row)",
                    "start it with the header image,mask[,skin_tone,...]",
                )
            ]
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if missing or dupes:
        why = (
            f"missing column(s) {', '.join(missing)}"
            if missing
            else f"repeated column(s) {', '.join(dupes)}"
        )
        raise ImportRejected(
            [
                entry(
                    label,
                    f"manifest has columns [{', '.join(header)}]: {why}",
                    "the header needs image and mask (paths relative to the set folder); "
                    "skin_tone, perceived_gender and tags are optional; other columns are kept as "
                    "metadata",
                )
            ]
        )
    return header, rows


def _safe_path(root: Path, rel: str) -> Path | None:
    rel = rel.strip().replace("\\", "/")
    if not rel or rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        return None
    if ".." in PurePosixPath(rel).parts:
        return None
    return root / rel


def _plan_manifest(root: Path, manifest: Path) -> Plan:
    header, rows = _read_manifest(manifest)
    mlabel = manifest.name
    has_attrs = any(c in header for c in ATTRIBUTE_COLUMNS)
    items: list[PlannedItem] = []
    skipped: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    listed: set[Path] = set()
    for n, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"{mlabel} line {n}"
        image_rel, mask_rel = row.get("image", "").strip(), row.get("mask", "").strip()
        image = _safe_path(root, image_rel)
        if image is None:
            skipped.append(
                entry(
                    where,
                    f"image path {image_rel!r} is empty, absolute or leaves the set folder",
                    "use a path relative to the set folder",
                )
            )
            continue
        listed.add(image)
        where = f"{where} ({image_rel})"
        if not image.is_file():
            skipped.append(entry(where, "image file not found", "add the file or fix the path"))
            continue
        mask = _safe_path(root, mask_rel)
        if mask is None or not mask.is_file():
            skipped.append(
                entry(
                    where,
                    "image without mask"
                    + (f" ({mask_rel} not found)" if mask_rel else " (mask column empty)"),
                    "add the mask (an all-black mask means no subject) or fix the path",
                )
            )
            continue
        stem = image.stem
        if stem in seen:
            skipped.append(
                entry(
                    where,
                    f"stem {stem!r} already used on line {seen[stem]}",
                    "give every image a distinct file name",
                )
            )
            continue
        item = PlannedItem(
            stem=stem, image=image, image_label=image_rel, mask=mask, mask_label=mask_rel
        )
        problem = _attributes(item, row, has_attrs)
        if problem:
            skipped.append(entry(where, *problem))
            continue
        seen[stem] = n
        inst_rel = row.get("instances", "").strip()
        inst_dir = _safe_path(root, inst_rel) if inst_rel else root / "instances" / stem
        if inst_dir is not None:
            item.instances = _instances_in(inst_dir, root)
        item.tags = [t.strip() for t in re.split(r"[;,|]", row.get("tags", "")) if t.strip()]
        item.metadata = {k: v for k, v in row.items() if k not in CONSUMED_COLUMNS and k}
        items.append(item)
    unlisted = [p for p in _listing(root / "images") if p not in listed]
    for path in unlisted:
        skipped.append(
            entry(
                f"images/{path.name}",
                f"not listed in {mlabel}; ignored",
                f"add a row for it to {mlabel} if it belongs to the set",
            )
        )
    return Plan(items, skipped, has_attrs, mlabel, "", len(rows) + len(unlisted))


def _attributes(item: PlannedItem, row: dict[str, str], has_attrs: bool) -> tuple[str, str] | None:
    source = vocab.normalise_attribute_source(row.get("attribute_source", ""))
    if source is None:
        return (
            f"attribute_source {row['attribute_source']!r} is not one of "
            f"{', '.join(vocab.ATTRIBUTE_SOURCES)}",
            "fix the value or leave it empty",
        )
    item.attribute_source = source
    if not has_attrs:
        return None
    tone = vocab.normalise_skin_tone(row.get("skin_tone", ""))
    if tone is None:
        return (f"skin_tone {row['skin_tone']!r} is not in the vocabulary", TONE_ACTION)
    gender = vocab.normalise_gender(row.get("perceived_gender", ""))
    if gender is None:
        return (
            f"perceived_gender {row['perceived_gender']!r} is not in the vocabulary",
            GENDER_ACTION,
        )
    item.skin_tone, item.perceived_gender = tone, gender
    return None
