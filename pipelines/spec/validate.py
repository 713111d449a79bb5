"""Validate model-spec documents: the contract's JSON Schema, then semantic rules it cannot say.

Why two layers: the schema (copied verbatim from the shared model-spec contract,
``docs/contracts/model-spec.md``) is the shared truth every
party validates with; the semantic rules catch specs that are well-formed but cannot work (a Core ML
spec that still asks the platform to normalise, a torch spec locating outputs by name). Errors name
the JSON path so a researcher can fix the field without reading a stack trace.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from pipelines.spec.declared import DIGEST_RULE, declared_data_problems
from pipelines.spec.types import ModelSpec

SCHEMA_FILE = "model-spec.schema.json"
# Core ML models take 0–255 image pixels (or 0–1 after a baked 1/255) and normalise inside the graph
# (contract: "scale = 1 or 255 as the image input expects").
COREML_SCALES = (1.0, 255.0)


class SpecError(ValueError):
    """A spec that does not satisfy the contract; ``str()`` is the user-facing message."""

    def __init__(
        self, message: str, path: str = "", *, more: list[tuple[str, str]] | None = None
    ) -> None:
        problems = [(path, message), *(more or [])]
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in problems))
        self.path = path
        self.detail = message
        self.problems = problems  # every problem found, in document order: (path, message)


def _raise_all(problems: list[tuple[str, str]]) -> None:
    if problems:
        (path, message), *more = problems
        raise SpecError(message, path, more=more)


@cache
def schema() -> dict[str, Any]:
    """The contract's JSON Schema, shipped as package data beside this module."""
    text = resources.files("pipelines.spec").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


def _json_path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(root)"


def _message(err: ValidationError) -> str:
    """Turn jsonschema's generic wording into something a model author can act on."""
    validator = err.validator
    if validator == "anyOf" and err.validator_value == [
        {"required": ["index"]},
        {"required": ["name"]},
    ]:
        return "'index' or 'name' is required"
    if validator == "required" and err.validator_value == ["builtin"]:
        return "'builtin' (the name of a built-in runner) is required when format is 'builtin'"
    if validator == "pattern" and list(err.absolute_path)[:2] == ["training", "image_sha256"]:
        return f"{DIGEST_RULE}, got {err.instance!r}"
    if validator == "additionalProperties":
        return err.message.replace("Additional properties are not allowed", "unknown field(s)")
    return err.message


def _error_order(err: ValidationError) -> tuple[int, str]:
    # Deepest, then first in document order: the most specific complaint comes first.
    return (-len(err.absolute_path), str(list(err.absolute_path)))


def validate_spec(spec: dict[str, Any]) -> None:
    """Raise :class:`SpecError` naming the JSON path unless ``spec`` satisfies the contract."""
    if not isinstance(spec, dict):
        raise SpecError(f"a spec must be a JSON object, got {type(spec).__name__}")
    validator = jsonschema.Draft202012Validator(schema())
    errors = list(validator.iter_errors(spec))
    if errors:  # report every problem, the most specific first
        found: list[tuple[str, str]] = []
        for err in sorted(errors, key=_error_order):
            item = (_json_path(err.absolute_path), _message(err))
            if item not in found:
                found.append(item)
        _raise_all(found)
    problems: list[tuple[str, str]] = []
    _semantic_checks(spec, problems)
    problems.extend(declared_data_problems(spec))
    _raise_all(problems)


def _semantic_checks(spec: dict[str, Any], problems: list[tuple[str, str]]) -> None:
    """Append (path, message) for every rule the spec breaks."""

    def bad(message: str, path: str) -> None:
        problems.append((path, message))

    inp = spec["input"]
    height, width = inp["size"]
    if height <= 0 or width <= 0:  # the schema's minimum already implies this; kept as a guard
        bad(f"size must be positive, got {inp['size']}", "input.size")
    channels = len(inp["color"])  # "RGB" / "BGR": one mean/std per colour channel
    for key in ("mean", "std"):
        if len(inp[key]) != channels:
            bad(
                f"has {len(inp[key])} values but color {inp['color']} has {channels} channels",
                f"input.{key}",
            )
        for i, v in enumerate(inp[key]):
            if not math.isfinite(v):
                bad("must be a finite number", f"input.{key}[{i}]")
    if not math.isfinite(inp["scale"]):
        bad("must be a finite number", "input.scale")

    fmt = spec["format"]
    if fmt == "builtin" and not spec.get("builtin", "").strip():
        bad("must name a built-in runner, e.g. 'saliency-grabcut'", "builtin")
    if fmt != "builtin" and "builtin" in spec:
        bad(f"only allowed when format is 'builtin' (format is {fmt!r})", "builtin")

    outputs = spec["outputs"]
    if fmt in ("torch_export", "torchscript", "builtin"):
        for key, out in outputs.items():
            if "index" not in out:
                bad(f"{fmt} outputs are a tuple without names; give 'index'", f"outputs.{key}")
    indexes = [o["index"] for o in outputs.values() if "index" in o and "name" not in o]
    if len(indexes) != len(set(indexes)):
        bad("alpha and confidence point at the same index", "outputs")
    names = [o["name"] for o in outputs.values() if "name" in o]
    if len(names) != len(set(names)):
        bad("alpha and confidence point at the same name", "outputs")

    if fmt == "coreml":
        if any(m != 0 for m in inp["mean"]):
            bad(
                "must be [0, 0, 0] for Core ML: normalisation is baked into the graph",
                "input.mean",
            )
        if any(s != 1 for s in inp["std"]):
            bad(
                "must be [1, 1, 1] for Core ML: normalisation is baked into the graph",
                "input.std",
            )
        if float(inp["scale"]) not in COREML_SCALES:
            bad(
                f"must be 1 or 255 for Core ML (what the image input expects), got {inp['scale']}",
                "input.scale",
            )


def load_spec(path: str | Path) -> ModelSpec:
    """Read, validate and type a spec file; errors name the file and the JSON path."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise SpecError(f"{path}: spec file not found") from e
    except json.JSONDecodeError as e:
        raise SpecError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from e
    try:
        validate_spec(doc)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from e
    return ModelSpec.from_dict(doc)


def parse_spec(spec: dict[str, Any] | ModelSpec) -> ModelSpec:
    """Validate a dict (or pass a ModelSpec through) — the one entry point library code uses."""
    if isinstance(spec, ModelSpec):
        return spec
    validate_spec(spec)
    return ModelSpec.from_dict(spec)
