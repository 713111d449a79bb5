"""sha256 of files and bytes: the one implementation every app and tool calls.

Files are read in 1 MiB blocks, so a multi-gigabyte model file never sits in memory. Digests are
lower-case hex, as stored in every `*_sha256` column and printed by every command.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 1 << 20  # 1 MiB: large enough that hashing runs at disk speed, small in memory


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


__all__ = ["sha256_bytes", "sha256_file"]
