"""Argument types of the `python -m pipelines.*` commands: the one place their checks live.

Each is an ``argparse`` ``type=`` callable: it returns the parsed value or raises
``ArgumentTypeError`` with a message naming the bad value, which argparse prints as
``error: argument --x: …`` with exit status 2.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def directory(value: str) -> Path:
    """An existing folder."""
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is not a directory")
    return path


def unit_interval(value: str) -> float:
    """A finite number in [0, 1] (thresholds, shares)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not (math.isfinite(number) and 0 <= number <= 1):
        raise argparse.ArgumentTypeError(f"{value} is not within [0, 1]")
    return number


def positive_int(value: str) -> int:
    """A whole number ≥ 1 (workers, counts)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


__all__ = ["directory", "positive_int", "unit_interval"]
