"""Safe extraction of an uploaded archive (.zip): held-out sets and imported predictions.

Every entry is checked before a single byte is written: absolute paths, `..` components,
symlinks, encrypted entries, names that mean two things (the same entry twice: the last would
win while a reviewer opening the zip sees the first; names equal up to case: one file on a
case-insensitive disk; a file `x` beside entries `x/…`), names longer than a file system takes,
and zip bombs by the archive as a whole (entry count, total uncompressed size, total compression
ratio) and by entry (ratio) make the whole archive fatal. Extraction then streams with byte
budgets against the bytes actually written, per entry and in total, because a forged header can
understate sizes; a breach removes everything extracted so far. An entry the file system still
refuses is named without the server's extraction path.

Reuse: `safe_extract(zip_path, dest, limits=ArchiveLimits.from_settings())` for any archive that is
not a set (`archive_extract(..., dataset_root=False)` is the same).
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings

from evalsite.core.faults import is_storage_fault
from evalsite.datasets.errors import ImportRejected, entry

# Photographs and PNG masks compress by 1-1.2x, a CSV manifest by ~5x; only crafted data reaches
# 100x. Small entries are exempt because a tiny file can compress well without being a threat.
MAX_ENTRY_RATIO = 100
RATIO_EXEMPT_BYTES = 1 << 20
# The whole-archive ratio applies once the archive expands past this: below it, even a crafted
# archive cannot fill a disk, and a folder of small text files may compress well.
TOTAL_RATIO_EXEMPT_BYTES = 64 << 20
COPY_BUFFER = 1 << 20
IGNORED_PARTS = ("__MACOSX",)
# ext4, APFS and NTFS take 255 bytes per path component; the whole relative path is bounded well
# under PATH_MAX (4096) so the extraction folder's own prefix always fits.
MAX_PART_BYTES = 255
MAX_PATH_BYTES = 1024
# An entry name quoted in a message is cut to this many characters (a 300-character name is
# named, not pasted).
SHOWN_NAME_CHARS = 80


@dataclass(frozen=True)
class ArchiveLimits:
    """What one archive may expand to (DATASET_ZIP_* settings)."""

    max_total_bytes: int
    max_total_ratio: float
    max_entries: int
    max_entry_ratio: float = MAX_ENTRY_RATIO

    @classmethod
    def from_settings(cls, *, max_total_bytes: int | None = None) -> ArchiveLimits:
        return cls(
            max_total_bytes=int(max_total_bytes or settings.DATASET_ZIP_MAX_BYTES),
            max_total_ratio=float(settings.DATASET_ZIP_MAX_RATIO),
            max_entries=int(settings.DATASET_ZIP_MAX_ENTRIES),
        )


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB" if n < 10 * 2**20 else f"{n / 2**20:.0f} MiB"


def shown(name: str) -> str:
    """An entry name as a message quotes it: cut when very long."""
    return name if len(name) <= SHOWN_NAME_CHARS else name[: SHOWN_NAME_CHARS - 1] + "…"


def _parts(name: str) -> tuple[str, ...]:
    return tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def _name_problems(infos: list[zipfile.ZipInfo]) -> list[dict[str, str]]:
    """Entry names that mean two things or cannot be written; each problem names its entries."""
    problems: list[dict[str, str]] = []
    files: dict[str, str] = {}  # case-folded path → the first entry's name
    folders: set[str] = set()  # case-folded paths that are folders (explicit or implied)
    for info in infos:
        name, parts = info.filename, _parts(info.filename)
        long = next((p for p in parts if len(p.encode()) > MAX_PART_BYTES), None)
        if long is not None:
            problems.append(
                entry(
                    shown(name),
                    f"a file or folder name of {len(long.encode())} bytes "
                    f"(limit {MAX_PART_BYTES} bytes per name)",
                    "shorten the name",
                )
            )
            continue
        if len(name.encode()) > MAX_PATH_BYTES:
            problems.append(
                entry(
                    shown(name),
                    f"a path of {len(name.encode())} bytes (limit {MAX_PATH_BYTES})",
                    "use shorter folder names",
                )
            )
            continue
        if not parts or _ignored(name):
            continue
        folded = [p.casefold() for p in parts]
        folders.update("/".join(folded[:i]) for i in range(1, len(folded)))
        key = "/".join(folded)
        if info.is_dir():
            folders.add(key)
            continue
        first = files.get(key)
        if first is None:
            files[key] = name
        elif first == name or _parts(first) == parts:
            problems.append(
                entry(
                    shown(name),
                    "the same entry appears twice in the archive (one would replace the other)",
                    "re-create the archive so that every file appears once",
                )
            )
        else:
            problems.append(
                entry(
                    shown(name),
                    f"differs from the entry {shown(first)!r} only in upper/lower case "
                    "(the same file on a case-insensitive disk)",
                    "rename one of the two",
                )
            )
    for key, name in files.items():
        if key in folders:
            problems.append(
                entry(
                    shown(name),
                    "is a file, and other entries put files inside a folder of the same name",
                    "rename the file or the folder",
                )
            )
    return problems


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


def archive_check(
    path: Path, *, max_total_bytes: int | None = None, limits: ArchiveLimits | None = None
) -> list[zipfile.ZipInfo]:
    """Return the entries to extract, or raise ImportRejected listing every problem."""
    limits = limits or ArchiveLimits.from_settings(max_total_bytes=max_total_bytes)
    label = path.name
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
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
    if len(infos) > limits.max_entries:
        problems.append(
            entry(
                label,
                f"{len(infos)} entries (limit {limits.max_entries}, DATASET_ZIP_MAX_ENTRIES)",
                "split the set into several archives",
            )
        )
    total = compressed = 0
    for info in infos:
        unsafe = _unsafe_reason(info)
        if unsafe:
            problems.append(entry(shown(info.filename), *unsafe))
            continue
        total += info.file_size
        compressed += info.compress_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_EXEMPT_BYTES and ratio > limits.max_entry_ratio:
            problems.append(
                entry(
                    shown(info.filename),
                    f"zip bomb suspected: compression ratio {ratio:.0f}:1 "
                    f"(limit {limits.max_entry_ratio:g}:1)",
                    "upload the real images and masks; they do not compress this much",
                )
            )
    if total > limits.max_total_bytes:
        problems.append(
            entry(
                label,
                f"zip bomb suspected: {_mib(total)} uncompressed "
                f"(limit {_mib(limits.max_total_bytes)}, DATASET_ZIP_MAX_BYTES)",
                "split the set into smaller archives",
            )
        )
    total_ratio = total / max(compressed, 1)
    if total > TOTAL_RATIO_EXEMPT_BYTES and total_ratio > limits.max_total_ratio:
        problems.append(
            entry(
                label,
                f"zip bomb suspected: the archive expands {total_ratio:.0f}:1 to {_mib(total)} "
                f"(limit {limits.max_total_ratio:g}:1, DATASET_ZIP_MAX_RATIO)",
                "upload the real images and masks; they do not compress this much",
            )
        )
    if not problems:  # traversal and links first: a name check of `../x` says nothing useful
        problems = _name_problems(infos)
    if problems:
        raise ImportRejected(problems)
    return [i for i in infos if not i.is_dir() and not _ignored(i.filename)]


def _ignored(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return any(p in IGNORED_PARTS for p in parts) or parts[-1].startswith("._")


def archive_extract(
    path: Path,
    dest: Path,
    *,
    max_total_bytes: int | None = None,
    dataset_root: bool = True,
    limits: ArchiveLimits | None = None,
) -> Path:
    """Extract a checked archive into `dest` and return the dataset root inside it.

    `dataset_root=False` (archives that are not sets, e.g. imported predictions) returns `dest`.
    On any refusal nothing extracted remains in `dest`.
    """
    limits = limits or ArchiveLimits.from_settings(max_total_bytes=max_total_bytes)
    infos = archive_check(path, limits=limits)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        _extract(path, dest, infos, limits)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return find_root(dest, label=path.name) if dataset_root else dest


def safe_extract(zip_path: Path, dest: Path, *, limits: ArchiveLimits | None = None) -> Path:
    """Extract any archive (not only a set) under the same checks; returns `dest`."""
    return archive_extract(zip_path, dest, dataset_root=False, limits=limits)


def _extract(path: Path, dest: Path, infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    """Stream entries out, counting the bytes really written (headers can lie)."""
    total = 0
    with zipfile.ZipFile(path) as zf:
        for info in infos:
            try:
                total = _extract_entry(zf, info, dest, total, limits, label=path.name)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise ImportRejected(
                    [
                        entry(
                            shown(info.filename),
                            f"the entry is corrupt ({exc})",
                            "re-create the archive with a standard zip tool",
                        )
                    ]
                ) from None
            except OSError as exc:
                if is_storage_fault(exc):
                    raise  # the server's disk, not the archive: a fault the job rides out
                # The entry's own name or shape: said without the server's extraction path.
                raise ImportRejected(
                    [
                        entry(
                            shown(info.filename),
                            f"cannot be extracted ({exc.strerror or type(exc).__name__})",
                            "re-create the archive with plain, short file names",
                        )
                    ]
                ) from None


def _extract_entry(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    dest: Path,
    total: int,
    limits: ArchiveLimits,
    *,
    label: str,
) -> int:
    """Write one entry; returns the archive's running total of bytes written."""
    target = dest.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as src, open(target, "wb") as dst:
        while chunk := src.read(COPY_BUFFER):
            written += len(chunk)
            total += len(chunk)
            if written > info.file_size:
                raise ImportRejected(
                    [
                        entry(
                            shown(info.filename),
                            "zip bomb suspected: entry is larger than its header says",
                            "re-create the archive with a standard zip tool",
                        )
                    ]
                )
            if total > limits.max_total_bytes:
                raise ImportRejected(
                    [
                        entry(
                            label,
                            "zip bomb suspected: extraction passed "
                            f"{_mib(limits.max_total_bytes)} (DATASET_ZIP_MAX_BYTES)",
                            "split the set into smaller archives",
                        )
                    ]
                )
            dst.write(chunk)
    return total


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
