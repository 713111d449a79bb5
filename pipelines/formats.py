"""Recognise an uploaded model file from its CONTENT and refuse what is unsafe to load.

Why content, not extension: uploads come from many hands, and a ``model.pt2`` that is really a
``torch.save`` pickle would run arbitrary code when loaded. Everything here only reads bytes,
zip directories and protobuf messages — nothing is unpickled or executed — so it is safe to call
in the web/worker process before the sandboxed load.

Accepted: ``torch_export`` (``torch.export.save`` archive), ``torchscript``, ``onnx``, ``coreml``
(``.mlpackage`` directory, a zip of one, or an ``.mlmodel`` protobuf). Rejected with a how-to:
pickles (``torch.save`` of a module or anything else), safetensors/state dicts, unknown bytes.
"""

from __future__ import annotations

import json
import pickletools
import stat
import zipfile
from pathlib import Path, PurePosixPath

ACCEPTED_FORMATS = (
    "torch.export archive (.pt2), TorchScript (.pt), ONNX (.onnx), "
    "Core ML (.mlpackage zipped, or .mlmodel)"
)
HOW_TO_EXPORT = (
    "Export the model instead: `ep = torch.export.export(model.eval(), (x,))` then "
    '`torch.export.save(ep, "model.pt2")`, or `torch.onnx.export(model, (x,), "model.onnx")`.'
)
PICKLE_MESSAGE = (
    "this is a pickled checkpoint (e.g. `torch.save(model)`), which can run arbitrary code when "
    f"loaded and is not accepted. Accepted formats: {ACCEPTED_FORMATS}. {HOW_TO_EXPORT}"
)
UNKNOWN_MESSAGE = f"not a recognised model file. Accepted formats: {ACCEPTED_FORMATS}."

# Zip-bomb limits. 4 GiB uncompressed is far above any model the platform evaluates (the reference
# candidates are < 10 MB), and a 1000:1 overall ratio is only reached by crafted archives —
# all-zero weight files compress ~1000:1 too, so the ratio only counts past 256 MiB.
MAX_UNCOMPRESSED_BYTES = 4 << 30
MAX_RATIO = 1000
RATIO_FLOOR_BYTES = 256 << 20
MAX_ENTRIES = 100_000
# A whole pickle is parsed (never executed) only below this size; real pickled checkpoints start
# with the protocol-2+ marker anyway.
PICKLE_SCAN_BYTES = 16 << 20

# torch.export.load falls back to full pickle for these payload kinds (see
# torch/export/pt2_archive/_package.py), and AOTInductor packages carry native .so code.
_PT2_FORBIDDEN_DIRS = ("data/aotinductor/", "data/executorch/", "data/mtia", "xl_model_weights/")
_PT2_PICKLED_CONSTANTS = ("custom_obj_", "opaque_obj_")


class FormatError(ValueError):
    """The file is not an accepted model format; ``str()`` is the user-facing reason."""


class UnsafeArchive(FormatError):
    """A zip that must not be extracted (path traversal, links, bomb)."""


def sniff_format(path: str | Path) -> str:
    """Return ``torch_export`` / ``torchscript`` / ``onnx`` / ``coreml`` or raise FormatError."""
    path = Path(path)
    if path.is_dir():
        if (path / "Manifest.json").is_file():
            return "coreml"
        raise FormatError(f"{path.name}: a directory that is not an .mlpackage; {UNKNOWN_MESSAGE}")
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    with path.open("rb") as f:
        head = f.read(16)
    if not head:
        raise FormatError(f"{path.name}: empty file; {UNKNOWN_MESSAGE}")
    if zipfile.is_zipfile(path):
        return _sniff_zip(path)
    if _looks_like_pickle(path, head):
        raise FormatError(f"{path.name}: {PICKLE_MESSAGE}")
    if _looks_like_safetensors(path, head):
        raise FormatError(
            f"{path.name}: a safetensors weights file holds weights without the network. "
            f"{HOW_TO_EXPORT}"
        )
    data = path.read_bytes()
    if _is_onnx(data):
        return "onnx"
    if _is_mlmodel(data):
        return "coreml"
    raise FormatError(f"{path.name}: {UNKNOWN_MESSAGE}")


def _sniff_zip(path: Path) -> str:
    infos = safe_zip_check(path)
    names = [i.filename for i in infos]
    if any(PurePosixPath(n).name == "Manifest.json" for n in names):
        return "coreml"
    # torch writes every record under one top-level folder: "<archive>/..."
    rel = {n.split("/", 1)[1] if "/" in n else n for n in names}
    if "archive_format" in rel or any(r.startswith("models/") for r in rel):
        with zipfile.ZipFile(path) as zf:
            _check_pt2_payloads(zf, path.name)
        return "torch_export"
    has_code = any(r.startswith("code/") for r in rel)
    if has_code and ("constants.pkl" in rel or "data.pkl" in rel):
        return "torchscript"
    if "data.pkl" in rel:
        raise FormatError(f"{path.name}: {PICKLE_MESSAGE}")
    raise FormatError(f"{path.name}: a zip archive but {UNKNOWN_MESSAGE}")


def _check_pt2_payloads(zf: zipfile.ZipFile, label: str) -> None:
    """Refuse .pt2 archives whose loading would unpickle or run native code."""
    for name in zf.namelist():
        rel = name.split("/", 1)[1] if "/" in name else name
        if rel.startswith(_PT2_FORBIDDEN_DIRS) or rel.endswith((".so", ".dylib", ".dll")):
            raise FormatError(
                f"{label}: contains compiled code ({rel}); only plain `torch.export.save` "
                "archives are accepted"
            )
        if rel.startswith(("data/weights/", "data/constants/")) and rel.endswith("config.json"):
            try:
                config = json.loads(zf.read(name)).get("config", {})
            except (ValueError, AttributeError) as e:
                raise FormatError(f"{label}: unreadable payload config {rel}") from e
            for fqn, meta in config.items():
                pickled = bool(meta.get("use_pickle")) or str(meta.get("path_name", "")).startswith(
                    _PT2_PICKLED_CONSTANTS
                )
                if pickled:
                    raise FormatError(
                        f"{label}: tensor/constant {fqn!r} is stored as a pickle, which is not "
                        f"accepted. {HOW_TO_EXPORT}"
                    )


def _looks_like_pickle(path: Path, head: bytes) -> bool:
    if head[0] == 0x80 and 2 <= head[1] <= 5:  # PROTO opcode: protocols 2–5 (torch.save uses 2)
        return True
    if path.stat().st_size > PICKLE_SCAN_BYTES or head[:1] not in (b"(", b"]", b"}", b"c"):
        return False
    try:  # protocol 0/1: parse opcodes without executing; a pickle ends exactly at STOP
        ops = list(pickletools.genops(path.read_bytes()))
    except Exception:
        return False
    return bool(ops) and ops[-1][0].name == "STOP" and len(ops) > 2


def _looks_like_safetensors(path: Path, head: bytes) -> bool:
    n = int.from_bytes(head[:8], "little")
    return 2 <= n < min(path.stat().st_size, 100 << 20) and head[8:9] == b"{"


def _is_onnx(data: bytes) -> bool:
    import onnx  # local: keeps `import pipelines.formats` cheap for the web process

    try:
        model = onnx.ModelProto()
        model.ParseFromString(data)
    except Exception:
        return False
    return model.ir_version >= 3 and len(model.opset_import) > 0 and len(model.graph.node) > 0


def _is_mlmodel(data: bytes) -> bool:
    try:
        from coremltools.proto import Model_pb2
    except ImportError:  # coremltools absent: cannot be a Core ML file we could handle anyway
        return False
    try:
        model = Model_pb2.Model()
        model.ParseFromString(data)
    except Exception:
        return False
    return (
        model.specificationVersion > 0
        and len(model.description.input) > 0
        and model.WhichOneof("Type") is not None
    )


def safe_zip_check(
    path: str | Path,
    *,
    max_total_bytes: int = MAX_UNCOMPRESSED_BYTES,
    max_ratio: float = MAX_RATIO,
    max_entries: int = MAX_ENTRIES,
    ratio_floor_bytes: int = RATIO_FLOOR_BYTES,
) -> list[zipfile.ZipInfo]:
    """Return the entries of a zip that is safe to extract, else raise :class:`UnsafeArchive`.

    Rejects ``..`` components, absolute paths (also ``\\``-rooted and drive-letter names),
    symlinks and other non-regular entries, too many entries and zip bombs (declared sizes; the
    extractor below also enforces actual bytes, since headers can lie).
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as e:
        raise UnsafeArchive(f"{path.name}: corrupt zip archive ({e})") from e
    if len(infos) > max_entries:
        raise UnsafeArchive(f"{path.name}: {len(infos)} entries (limit {max_entries})")
    total = compressed = 0
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            raise UnsafeArchive(f"{path.name}: absolute path entry {name!r} is not allowed")
        if ".." in parts:
            raise UnsafeArchive(f"{path.name}: entry {name!r} escapes the archive ('..')")
        mode = info.external_attr >> 16
        if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            kind = "symlink" if stat.S_ISLNK(mode) else "special file"
            raise UnsafeArchive(f"{path.name}: {kind} entry {name!r} is not allowed")
        total += info.file_size
        compressed += info.compress_size
    if total > max_total_bytes:
        raise UnsafeArchive(
            f"{path.name}: expands to {total / 2**20:.0f} MiB (limit {max_total_bytes / 2**20:.0f})"
        )
    if total > ratio_floor_bytes and total > max_ratio * max(compressed, 1):
        raise UnsafeArchive(
            f"{path.name}: compression ratio {total / max(compressed, 1):.0f}:1 looks like a zip "
            "bomb"
        )
    return infos


def safe_extract(
    path: str | Path, dest: str | Path, *, max_total_bytes: int = MAX_UNCOMPRESSED_BYTES
) -> Path:
    """Extract a checked zip into ``dest``, counting real bytes written (headers can lie)."""
    path, dest = Path(path), Path(dest)
    infos = safe_zip_check(path, max_total_bytes=max_total_bytes)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    written = 0
    with zipfile.ZipFile(path) as zf:
        for info in infos:
            target = (root / info.filename).resolve()
            if not target.is_relative_to(root):
                raise UnsafeArchive(f"{path.name}: entry {info.filename!r} escapes the archive")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("wb") as out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > max_total_bytes:
                        raise UnsafeArchive(f"{path.name}: expands past the size limit")
                    out.write(chunk)
    return dest


def find_mlpackage(root: str | Path) -> Path:
    """The ``.mlpackage`` directory inside an extracted zip (or ``root`` itself)."""
    root = Path(root)
    if (root / "Manifest.json").is_file():
        return root
    manifests = sorted(root.rglob("Manifest.json"), key=lambda p: len(p.parts))
    if not manifests:
        raise FormatError(f"{root.name}: no Manifest.json, not an .mlpackage")
    return manifests[0].parent
