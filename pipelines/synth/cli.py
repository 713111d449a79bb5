"""Command line: ``python -m pipelines.synth --fg DIR [--bg DIR] --n N --seed S --out DIR ...``.

Why a separate module: argument parsing and exit codes (2 = bad usage or unusable input, as argparse
does) stay out of the library, so colleagues call :func:`generate` directly.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence

from .generate import generate
from .sources import SourceError


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` (e.g. ``3024x4032``) into (W, H)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size must look like 3024x4032 (WxH), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.synth",
        description="Generate a synthetic subject-lifting set (composites, drawn people in Monk "
        "skin tones, no-subject negatives) with exact masks, deterministic by seed.",
    )
    p.add_argument("--fg", required=True, help="folder with images/ and masks/ (matched by stem)")
    p.add_argument(
        "--bg", help="background folder: plain images or images/ (+ masks/); default: --fg"
    )
    p.add_argument("--n", type=int, required=True, help="total number of items")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="output folder (must be empty unless --overwrite)")
    p.add_argument(
        "--size",
        type=parse_size,
        help="WxH of every item (default: the background's natural size, long side ≤ 640)",
    )
    p.add_argument("--people", type=int, default=0, help="how many of the N items are drawn people")
    p.add_argument(
        "--negatives", type=int, default=0, help="how many of the N are no-subject items"
    )
    p.add_argument(
        "--image-format",
        choices=("jpg", "png"),
        default="jpg",
        help="png keeps image pixels exactly as composited",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a previous output in --out")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        out = generate(
            args.fg,
            args.bg,
            args.out,
            args.n,
            args.seed,
            args.size,
            args.people,
            args.negatives,
            image_format=args.image_format,
            overwrite=args.overwrite,
        )
    except SourceError as exc:
        parser.error(str(exc))  # exits 2 with usage and the message
    print(f"wrote {args.n} items to {out} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0
