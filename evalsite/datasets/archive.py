"""Safe extraction of an uploaded set archive (.zip).

Every entry is checked before a single byte is written: absolute paths, `..` components, symlinks,
encrypted entries and zip bombs (by compression ratio and by total size) make the whole archive
fatal. Extraction then streams with a byte budget, because a forged header can understate an
entry's size.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from evalsite.datasets.errors import ImportRejected, entry

# Photographs and PNG masks compress by 1-1.2x, a CSV manifest by ~5x; only crafted data reaches
# 100x. Small entries are exempt because a tiny file can compress well without being a threat.
MAX_ENTRY_RATIO = 100
RATIO_EXEMPT_BYTES = 1 << 20
MAX_ENTRIES = 200_000
COPY_BUFFER = 1 << 20
IGNORED_PARTS = ("__MACOSX",)


def _unsafe_reason(info: zipfile.ZipInfo) -> tuple[str, str] | None:
    name = info.filename
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return ("absolute path in the archive", "zip the folder with relative paths")
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return ("path leaves the archive ('..')", "zip the folder with plain relative paths")
    if stat.S_ISLNK(info.external_attr >> 16):
        return ("symbolic link in the archive", "replace links by the files they point to")
    if info.flag_bits & 0x1:
        return ("encrypted entry", "upload an archive without a password")
    return None


def archive_check(path: Path, *, max_total_bytes: int) -> list[zipfile.ZipInfo]:
    """Return the entries to extract, or raise ImportRejected listing every unsafe entry."""
    label = path.name
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportRejected(
            [
                entry(
                    label,
                    f"not a readable zip archive ({exc})",
                    "upload a .zip made by a standard zip tool",
                )
            ]
        ) from None
    with zf:
        infos = zf.infolist()
    problems: list[dict[str, str]] = []
    if len(infos) > MAX_ENTRIES:
        problems.append(
            entry(
                label,
                f"{len(infos)} entries (limit {MAX_ENTRIES})",
                "split the set into several archives",
            )
        )
    total = 0
    for info in infos:
        unsafe = _unsafe_reason(info)
        if unsafe:
            problems.append(entry(info.filename, *unsafe))
            continue
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_EXEMPT_BYTES and ratio > MAX_ENTRY_RATIO:
            problems.append(
                entry(
                    info.filename,
                    f"zip bomb suspected: compression ratio {ratio:.0f}:1 "
                    f"(limit {MAX_ENTRY_RATIO}:1)",
                    "upload the real images and masks; they do not compress this much",
                )
            )
    if total > max_total_bytes:
        problems.append(
            entry(
                label,
                f"zip bomb suspected: {total / 2**20:.0f} MiB uncompressed "
                f"(limit {max_total_bytes / 2**20:.0f} MiB)",
                "split the set into smaller archives",
            )
        )
    if problems:
        raise ImportRejected(problems)
    return [i for i in infos if not i.is_dir() and not _ignored(i.filename)]


def _ignored(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return any(p in IGNORED_PARTS for p in parts) or parts[-1].startswith("._")


def archive_extract(
    path: Path, dest: Path, *, max_total_bytes: int, dataset_root: bool = True
) -> Path:
    """Extract a checked archive into `dest` and return the dataset root inside it.

    `dataset_root=False` (archives that are not sets, e.g. imported predictions) returns `dest`.
    """
    infos = archive_check(path, max_total_bytes=max_total_bytes)
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path) as zf:
        for info in infos:
            target = dest.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with zf.open(info) as src, open(target, "wb") as dst:
                while chunk := src.read(COPY_BUFFER):
                    written += len(chunk)
                    if written > info.file_size:  # header lied about the size
                        shutil.rmtree(dest, ignore_errors=True)
                        raise ImportRejected(
                            [
                                entry(
                                    info.filename,
                                    "zip bomb suspected: entry is larger than its header says",
                                    "re-create the archive with a standard zip tool",
                                )
                            ]
                        )
                    dst.write(chunk)
    return find_root(dest, label=path.name) if dataset_root else dest


def find_root(folder: Path, *, label: str) -> Path:
    """The folder holding images/ or manifest.csv: the top, or a single top-level folder."""
    if _is_root(folder):
        return folder
    subdirs = [p for p in folder.iterdir() if p.is_dir() and not _ignored(p.name)]
    if len(subdirs) == 1 and _is_root(subdirs[0]):
        return subdirs[0]
    raise ImportRejected(
        [
            entry(
                label,
                "no images/ folder or manifest.csv at the top of the archive",
                "zip a folder holding images/ and masks/ (matched by stem)",
            )
        ]
    )


def _is_root(folder: Path) -> bool:
    return (folder / "images").is_dir() or (folder / "manifest.csv").is_file()
