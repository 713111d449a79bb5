"""Arguments, model/spec resolution and exit codes of ``python -m pipelines.predict``.

``python -m pipelines.predict --model FILE [--spec FILE] --images DIR --out DIR [--cutouts DIR]
[--json FILE] [--runtime auto|cpu|cuda|mps|onnx-cpu|...] [--no-gate] [--upsample guided|bilinear]
[--gate-threshold T]``

* ``--spec`` defaults to the sidecar ``FILE.spec.json``; it is validated with
  :mod:`pipelines.spec`, and the model file's actual format (read from its content by
  :func:`pipelines.formats.sniff_format`, which also refuses pickles) must be the one the spec
  declares.
* Built-in (classical) runners have no file: pass ``--model builtin:NAME`` (e.g.
  ``builtin:saliency-grabcut``); the spec then defaults to that runner's own spec, and an explicit
  ``--spec`` must be a ``builtin`` spec naming the same runner. A file whose spec says ``builtin``
  is refused, so a typo cannot silently run the baseline instead of a model.
* ``--gate-threshold`` (an addition to the contract) overrides the spec's ``gate_threshold``, as a
  run may, so a run with an overridden threshold can be reproduced too.

Exit status: 0 every image written; 1 some images failed (each on stderr and in the JSON, the rest
written); 2 bad model, spec or arguments (nothing written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.cli_args import unit_interval
from pipelines.spec import ModelSpec, SpecError, load_spec, parse_spec

from .run import IMAGE_SUFFIXES, Options, list_images, predict_folder

BUILTIN_PREFIX = "builtin:"
EXIT_OK, EXIT_SOME_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    """Bad model, spec or arguments: printed as ``error: …`` and exit status 2."""


@dataclass(frozen=True)
class ResolvedModel:
    path: Path | None  # None for built-in runners
    spec: ModelSpec
    spec_source: str  # file path, or "builtin:NAME (default spec)"
    label: str  # what the user passed to --model


def build_parser() -> argparse.ArgumentParser:
    from pipelines.runners import RUNTIMES  # light: runtimes themselves are imported lazily

    p = argparse.ArgumentParser(
        prog="python -m pipelines.predict",
        description="Run a model on a folder of photos and write the full-resolution alpha PNGs "
        "a run scores (plus, optionally, RGBA cutouts and a JSON report).",
    )
    p.add_argument(
        "--model",
        required=True,
        help="model file (.pt2, .pt, .onnx, .mlpackage[.zip], .mlmodel) or "
        "builtin:NAME for a built-in runner, e.g. builtin:saliency-grabcut",
    )
    p.add_argument("--spec", type=Path, help="model spec JSON (default: MODEL.spec.json)")
    p.add_argument(
        "--images",
        required=True,
        type=Path,
        help=f"folder of photos ({', '.join(IMAGE_SUFFIXES)}); not recursive",
    )
    p.add_argument(
        "--out", required=True, type=Path, help="receives one 8-bit greyscale <stem>.png per photo"
    )
    p.add_argument(
        "--cutouts",
        type=Path,
        help="receives <stem>.png (RGBA) and <stem>.instance-N.png per photo",
    )
    p.add_argument(
        "--json", type=Path, help="per-image confidence, gate, instances, latency, errors"
    )
    p.add_argument(
        "--runtime",
        default="auto",
        choices=RUNTIMES,
        help="where to run the model (default: auto, the worker's choice)",
    )
    p.add_argument(
        "--no-gate",
        action="store_true",
        help="write the ungated alpha even when confidence is below the threshold",
    )
    p.add_argument(
        "--upsample",
        default="guided",
        choices=("guided", "bilinear"),
        help="how the model-size alpha reaches the photo's size (default: guided)",
    )
    p.add_argument(
        "--gate-threshold",
        type=unit_interval,
        help="override the spec's gate_threshold (a run may do the same)",
    )
    return p


def _builtin_model(name: str, spec_path: Path | None) -> ResolvedModel:
    from pipelines.runners.builtin import BUILTINS, builtin_spec

    if spec_path is None:
        if name not in BUILTINS:
            raise UsageError(
                f"--model: unknown built-in {name!r}; available: {', '.join(BUILTINS)}"
            )
        spec = parse_spec(builtin_spec(name))
        return ResolvedModel(
            None, spec, f"{BUILTIN_PREFIX}{name} (default spec)", BUILTIN_PREFIX + name
        )
    spec = load_spec(spec_path)
    if spec.format != "builtin" or spec.builtin != name:
        raise UsageError(
            f"--spec {spec_path}: describes format {spec.format!r}"
            + (f" (builtin {spec.builtin!r})" if spec.builtin else "")
            + f", but --model asks for the built-in {name!r}"
        )
    return ResolvedModel(None, spec, str(spec_path), BUILTIN_PREFIX + name)


def resolve_model(model: str, spec_path: Path | None) -> ResolvedModel:
    """Find and validate the spec, check the model file matches it; raise UsageError/SpecError."""
    if model.startswith(BUILTIN_PREFIX):
        return _builtin_model(model[len(BUILTIN_PREFIX) :], spec_path)
    path = Path(model)
    if not path.exists():
        raise UsageError(f"--model {model}: no such file")
    if spec_path is None:
        spec_path = Path(str(path) + ".spec.json")
        if not spec_path.is_file():
            raise UsageError(
                f"--model {model}: no sidecar spec {spec_path.name} beside it; pass --spec FILE"
            )
    spec = load_spec(spec_path)
    if spec.format == "builtin":
        raise UsageError(
            f"--spec {spec_path}: describes the built-in {spec.builtin!r}, which has no model "
            f"file; run it with --model {BUILTIN_PREFIX}{spec.builtin}"
        )
    from pipelines.formats import FormatError, sniff_format

    try:
        actual = sniff_format(path)
    except FormatError as e:
        raise UsageError(f"--model {model}: {e}") from e
    if actual != spec.format:
        raise UsageError(f"--model {model}: the file is {actual}, but the spec says {spec.format}")
    return ResolvedModel(path, spec, str(spec_path), model)


def _check_folders(args: argparse.Namespace) -> None:
    if not args.images.is_dir():
        raise UsageError(f"--images {args.images}: not a folder")
    images = args.images.resolve()
    outputs = {"--out": args.out, "--cutouts": args.cutouts}
    for flag, folder in outputs.items():
        if folder is not None and folder.resolve() == images:
            raise UsageError(
                f"{flag} {folder}: must not be the --images folder (it would overwrite PNG photos)"
            )
    if args.cutouts is not None and args.cutouts.resolve() == args.out.resolve():
        raise UsageError("--cutouts must differ from --out: --out holds only the alpha PNGs")
    for flag, folder in outputs.items():
        if folder is not None and folder.exists() and not folder.is_dir():
            raise UsageError(f"{flag} {folder}: exists and is not a folder")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_folders(args)
        images = list_images(args.images)
        if not images:
            raise UsageError(
                f"--images {args.images}: no photos ({', '.join(IMAGE_SUFFIXES)}) in this folder"
            )
        resolved = resolve_model(args.model, args.spec)
        from pipelines.runners import make_runner

        try:
            runner = make_runner(resolved.path, resolved.spec, args.runtime)
        except Exception as e:  # any load failure is a bad model (or an unusable runtime)
            raise UsageError(f"--model {args.model}: cannot load ({type(e).__name__}: {e})") from e
    except (UsageError, SpecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    opts = Options(
        out=args.out,
        cutouts=args.cutouts,
        json_path=args.json,
        gate=not args.no_gate,
        threshold=args.gate_threshold,
        upsample=args.upsample,
        runtime=args.runtime,
        model_label=resolved.label,
        spec_source=resolved.spec_source,
    )
    report = predict_folder(runner, resolved.spec, images, opts)
    failed = report["errors"]
    for err in failed:
        print(f"error: {err['file']}: {err['error']}", file=sys.stderr)
    n = len(images)
    print(
        f"wrote {n - len(failed)} of {n} alpha PNGs to {args.out}"
        + (f"; {len(failed)} failed" if failed else "")
    )
    return EXIT_SOME_FAILED if failed else EXIT_OK
