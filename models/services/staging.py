"""Checks on an uploaded model file, before anything is stored: format sniff, archive safety, spec.

Everything here is about bytes the registry has not yet accepted, so it runs on a local path
(Django's temporary upload file, the CLI's argument, or a copy of a small in-memory upload) and
never unpickles or imports the model: that happens only in the sandbox's child process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.files import File

from evalsite.core.tempdirs import temp_folder
from models.models import ModelFormat

# Container formats that are zip archives: checked for `../` and absolute entries before any load.
ZIP_FORMATS = {ModelFormat.TORCH_EXPORT, ModelFormat.TORCHSCRIPT, ModelFormat.COREML}
ACCEPTED_FORMATS_HELP = (
    "Accepted formats: torch.export archive (.pt2, `torch.export.save`), TorchScript "
    "(`torch.jit.save`), ONNX (.onnx, `torch.onnx.export`), Core ML (.mlmodel or a zipped "
    ".mlpackage)."
)


@contextmanager
def staged_path(source: Path | File[Any]) -> Iterator[Path]:
    """A local path holding the bytes of `source`; temporary copies are removed afterwards."""
    if isinstance(source, Path):
        yield source
        return
    temporary = getattr(source, "temporary_file_path", None)
    if temporary is not None:
        yield Path(temporary())
        return
    with temp_folder("registry-upload-") as folder:
        path = Path(folder) / Path(source.name or "upload").name
        source.seek(0)
        with open(path, "wb") as out:
            for chunk in source.chunks():
                out.write(chunk)
        yield path


@dataclass(frozen=True)
class ModelFileCheck:
    """What the bytes of an uploaded model file say: its format, and a rejection reason if any."""

    format: str
    reason: str = ""


def model_file_check(
    path: Path, spec: dict[str, Any] | None, *, display_name: str = ""
) -> ModelFileCheck:
    """Sniff the format from content, check zip entries, validate the spec and its format.

    The sniffer raises FormatError for pickles (with the accepted formats and how to export),
    junk and unsafe zips (`../` entries, links, bombs); its message becomes the reason.
    """
    from pipelines.formats import FormatError, UnsafeArchive, safe_zip_check, sniff_format

    def named(exc: BaseException) -> str:
        text = _message(exc)
        return text.replace(path.name, display_name) if display_name else text

    try:
        fmt = str(sniff_format(path))
        if fmt in ZIP_FORMATS and _is_zip(path):
            safe_zip_check(path)
    except UnsafeArchive as exc:
        return ModelFileCheck(ModelFormat.UNKNOWN, f"Unsafe archive: {named(exc)}")
    except FormatError as exc:
        return ModelFileCheck(ModelFormat.UNKNOWN, named(exc))
    if fmt not in ModelFormat.values or fmt in {ModelFormat.UNKNOWN, ModelFormat.BUILTIN}:
        return ModelFileCheck(
            ModelFormat.UNKNOWN, f"Unrecognised model file. {ACCEPTED_FORMATS_HELP}"
        )
    return ModelFileCheck(fmt, spec_check(spec, fmt))


def spec_check(spec: dict[str, Any] | None, fmt: str) -> str:
    """'' when the spec is valid and names this format, else the reason (names the field)."""
    from pipelines.spec import SpecError, validate_spec

    if not spec:
        return (
            "No model spec: ship it beside the file as FILE.spec.json, pass --spec, or attach "
            "it to the upload (see the model-spec contract)."
        )
    try:
        validate_spec(spec)
    except SpecError as exc:
        return f"Invalid model spec: {_message(exc)}"
    if spec.get("format") != fmt:
        return (
            f"The spec says format {spec.get('format')!r} but the file is {fmt!r} "
            "(sniffed from its content); fix the spec's `format` or upload the right file."
        )
    return ""


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
