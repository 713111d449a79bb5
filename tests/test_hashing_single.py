"""Hashing has one home, `pipelines/hashing.py`: no other module calls `hashlib.sha256`, and the
helpers there stream, agree with hashlib and keep the digests already stored in databases."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.hashing import (
    BLOCK,
    sha256_arrays,
    sha256_bytes,
    sha256_chunks,
    sha256_file,
    sha256_json,
)

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / "pipelines" / "hashing.py"
#: Tests compute expected digests with hashlib itself on purpose; the virtualenv is not ours.
SKIP_DIRS = {"tests", ".venv", "node_modules", ".git"}
#: Module -> why it may call `hashlib.sha256` directly. Empty: every sha256 in the product is
#: a file, bytes, stream, array or JSON digest, which the helpers cover.
ALLOWED: dict[str, str] = {}

pytestmark = pytest.mark.no_services


def _sha256_calls(path: Path) -> list[int]:
    """Line numbers where ``path`` reaches sha256 through hashlib (attribute, `from` import or
    `hashlib.new("sha256")`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "hashlib":
            if any(alias.name == "sha256" for alias in node.names):
                lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr == "sha256":
            if isinstance(node.value, ast.Name) and node.value.id == "hashlib":
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if (
                func.attr == "new"
                and isinstance(func.value, ast.Name)
                and func.value.id == "hashlib"
            ):
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and str(first.value).lower() == "sha256":
                    lines.append(node.lineno)
    return sorted(lines)


def _sources() -> list[Path]:
    return [
        p
        for p in ROOT.rglob("*.py")
        if not SKIP_DIRS & set(p.relative_to(ROOT).parts) and p != HOME
    ]


def test_no_module_outside_pipelines_hashing_calls_hashlib_sha256():
    offenders = {
        f"{p.relative_to(ROOT)}:{line}"
        for p in _sources()
        for line in _sha256_calls(p)
        if str(p.relative_to(ROOT)) not in ALLOWED
    }
    assert offenders == set(), "hash through pipelines/hashing.py"


def test_the_scan_finds_each_way_of_reaching_sha256(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import hashlib\nfrom hashlib import sha256\n"
        "a = hashlib.sha256(b'x')\nb = hashlib.new('SHA256')\nc = hashlib.blake2b(b'x')\n"
    )
    assert _sha256_calls(sample) == [2, 3, 4]


def test_file_digest_streams_in_blocks_and_matches_hashlib(tmp_path):
    data = np.random.default_rng(0).bytes(2 * BLOCK + 17)
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest() == sha256_bytes(data)
    reads: list[int] = []

    class Counting:
        def __init__(self, fh):
            self.fh = fh

        def read(self, n):
            reads.append(n)
            return self.fh.read(n)

    with path.open("rb") as fh:
        counted = Counting(fh)
        assert sha256_chunks(iter(lambda: counted.read(BLOCK), b"")) == sha256_bytes(data)
    assert set(reads) == {BLOCK} and len(reads) == 4  # three blocks and the empty end


def test_json_digest_ignores_key_order_and_keeps_the_stored_config_hash_form():
    document = {"model": "spec:x", "dataset": "abc", "postprocess": {"b": 1, "a": [1, 2]}}
    shuffled = {"postprocess": {"a": [1, 2], "b": 1}, "dataset": "abc", "model": "spec:x"}
    stored_form = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    assert sha256_json(document) == sha256_json(shuffled) == hashlib.sha256(stored_form).hexdigest()


def test_array_digest_tells_shape_and_dtype_apart():
    a = np.zeros((2, 3), dtype=np.uint8)
    assert sha256_arrays(a) != sha256_arrays(a.reshape(3, 2))
    assert sha256_arrays(a) != sha256_arrays(a.astype(bool))
    assert sha256_arrays(a, a) != sha256_arrays(a)
    assert sha256_arrays(np.asfortranarray(np.arange(6).reshape(2, 3))) == sha256_arrays(
        np.arange(6).reshape(2, 3)
    )
