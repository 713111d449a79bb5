"""sha256 of files, bytes, streams, arrays and JSON documents: the one implementation every app
and tool calls (`tests/test_hashing_single.py` fails on a `hashlib.sha256` anywhere else).

Files and streams are hashed block by block, so a multi-gigabyte model file never sits in memory.
Digests are lower-case hex, as stored in every `*_sha256` column and printed by every command.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

BLOCK = 1 << 20  # 1 MiB: large enough that hashing runs at disk speed, small in memory


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_chunks(chunks: Iterable[bytes]) -> str:
    """Hex sha256 of the concatenated ``chunks``, fed one at a time (an upload's `.chunks()`,
    lines of a manifest): the whole never has to be in memory."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    with Path(path).open("rb") as fh:
        return sha256_chunks(iter(lambda: fh.read(BLOCK), b""))


def sha256_json(document: Any) -> str:
    """Hex sha256 of ``document``'s canonical JSON text: keys sorted, no spaces, so the same
    document always gives the same digest (run config hashes, gate fingerprints)."""
    return sha256_bytes(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())


def sha256_arrays(*arrays: np.ndarray) -> str:
    """Hex sha256 over each array's shape, dtype and C-order bytes: two arrays that differ only
    in shape or dtype never share a digest."""
    return sha256_chunks(
        part
        for arr in arrays
        for part in (repr((arr.shape, arr.dtype.str)).encode(), np.ascontiguousarray(arr).tobytes())
    )


__all__ = [
    "sha256_arrays",
    "sha256_bytes",
    "sha256_chunks",
    "sha256_file",
    "sha256_json",
]
