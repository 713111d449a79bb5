"""A bounded local cache of remote files, shared by the processes of one worker machine.

Why: with object storage, a worker has none of the stored files; it fetches what a chunk needs.
Set files are content-addressed and model files immutable per version, so a fetched copy stays
valid: a 1000-image set is downloaded once per worker, not once per run.

How it stays correct with several pool processes and crashes:
- a download goes to a temporary file inside the cache folder and is renamed into place only
  after it completed and (when the sha256 is known) matched, so a partial or corrupt download is
  never returned, even to a process that looks at the same moment;
- placing a file and evicting others happen under an exclusive `fcntl` lock on one lock file;
  a hit touches the file under the shared lock, so it is never evicted between the check and
  the touch;
- a ledger file holds the bytes and files held, updated under that lock, so placing a file does
  not list the cache; only when a new file would not fit is the cache listed (and the ledger
  recomputed from the listing, which also repairs it after a crash between a rename and its
  update): the least recently used files (by modification time, which a hit renews) are removed
  down to `low_water` of the cap, so the next misses place without listing again. Files used
  within `protect_seconds` are kept (a process may be about to open the path it was given), so
  the cache may exceed the cap for that long when a single chunk needs more than the cap.

Pure: no Django. `evalsite.core.files` builds one from the settings.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from pipelines.hashing import sha256_bytes, sha256_file

#: Sub-folders of the cache root: placed files, downloads in progress; the lock and ledger files.
OBJECTS, TMP, LOCK, LEDGER = "objects", "tmp", ".lock", ".usage"
#: A temporary download left by a killed process is removed by the next eviction after this long.
STALE_TMP_SECONDS = 3600.0


class CorruptObject(ValueError):
    """A downloaded object's bytes do not have the sha256 it is stored under."""

    def __init__(self, key: str, expected: str, got: str) -> None:
        super().__init__(f"stored file {key} is corrupt: expected sha256 {expected}, got {got}")
        self.key, self.expected, self.got = key, expected, got


class FileCache:
    """`get(key, sha256=…, fetch=…)` returns a local path holding the key's bytes."""

    def __init__(
        self,
        root: Path,
        max_bytes: int,
        *,
        protect_seconds: float = 30.0,
        low_water: float = 0.9,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self.protect_seconds = protect_seconds
        # Evicting to 90 % of the cap: measured, listing 1000 cached files under the lock cost
        # ~45 ms, paid by every miss of a full cache when evicting only to make room.
        self.low_water = low_water
        (self.root / OBJECTS).mkdir(parents=True, exist_ok=True)
        (self.root / TMP).mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str, sha256: str | None = None, version: str = "") -> Path:
        """Where `key` is kept: named by a digest of the key and of its sha256 or `version` (an
        ETag: a key whose content changed is fetched again), keeping the key's suffix (runtimes
        and image readers go by it)."""
        ident = f"{key}\0{sha256 or ''}\0{version}"
        digest = sha256_bytes(ident.encode("utf-8", "surrogatepass"))
        name = key.rsplit("/", 1)[-1]
        suffix = "".join(Path(name).suffixes[-2:])[:32]
        return self.root / OBJECTS / digest[:2] / f"{digest}{suffix}"

    @contextlib.contextmanager
    def _lock(self, mode: int) -> Iterator[None]:
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def get(
        self,
        key: str,
        *,
        sha256: str | None,
        fetch: Callable[[BinaryIO], None],
        version: str = "",
    ) -> Path:
        """The cached copy of `key`; on a miss `fetch(fh)` writes its bytes into `fh`. Give the
        key's `sha256` when known (checked), else a `version` that changes with its content.

        Raises `CorruptObject` when the fetched bytes' sha256 is not `sha256`; whatever `fetch`
        raises propagates and nothing is cached.
        """
        target = self.path_for(key, sha256, version)
        with self._lock(fcntl.LOCK_SH), contextlib.suppress(FileNotFoundError):
            os.utime(target)  # a hit: most recently used now
            return target
        fd, tmp_name = tempfile.mkstemp(dir=self.root / TMP, prefix=".part-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fetch(fh)
            if sha256 is not None:
                got = sha256_file(tmp)
                if got != sha256:
                    raise CorruptObject(key, sha256, got)
            size = tmp.stat().st_size
            with self._lock(fcntl.LOCK_EX):
                self._place(tmp, target, size)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    def _entries(self) -> list[tuple[float, int, Path]]:
        out = []
        for folder in (self.root / OBJECTS).iterdir():
            for entry in os.scandir(folder):
                with contextlib.suppress(FileNotFoundError):
                    st = entry.stat()
                    out.append((st.st_mtime, st.st_size, Path(entry.path)))
        return out

    def _read_ledger(self) -> tuple[int, int] | None:
        try:
            held, count = (self.root / LEDGER).read_text().split()
            return max(0, int(held)), max(0, int(count))
        except (OSError, ValueError):
            return None

    def _write_ledger(self, held: int, count: int) -> None:
        tmp = self.root / f"{LEDGER}.{os.getpid()}"
        tmp.write_text(f"{held} {count}")
        os.replace(tmp, self.root / LEDGER)

    def _place(self, tmp: Path, target: Path, size: int) -> None:
        """Rename a verified download into place, evicting first if it would not fit (lock
        held); another process's identical copy is simply replaced."""
        ledger = self._read_ledger()
        try:
            old, existed = target.stat().st_size, 1
        except FileNotFoundError:
            old, existed = 0, 0
        if ledger is None or ledger[0] - old + size > self.max_bytes:
            held, count = self._evict(needed=size, keep=target)
        else:
            held, count = ledger[0] - old, ledger[1] - existed
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        self._write_ledger(held + size, count + 1)

    def _evict(self, *, needed: int, keep: Path) -> tuple[int, int]:
        """Remove least recently used files until `needed` more bytes fit under the low-water
        mark (lock held); (bytes, files) left, `keep` not counted."""
        entries = sorted(e for e in self._entries() if e[2] != keep)
        total, count = sum(size for _mtime, size, _path in entries), len(entries)
        goal = min(self.max_bytes, int(self.max_bytes * self.low_water))
        recent = time.time() - self.protect_seconds
        for mtime, size, path in entries:
            if total + needed <= goal:
                break
            if mtime > recent:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total, count = total - size, count - 1
        stale = time.time() - STALE_TMP_SECONDS
        for entry in os.scandir(self.root / TMP):
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < stale:
                    os.unlink(entry.path)
        return total, count

    def usage(self) -> tuple[int, int]:
        """(bytes, files) held now (from the ledger; listed when there is none)."""
        ledger = self._read_ledger()
        if ledger is not None:
            return ledger
        try:
            entries = self._entries()
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            return 0, 0
        return sum(size for _, size, _ in entries), len(entries)
