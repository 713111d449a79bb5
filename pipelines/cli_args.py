"""Argument types of the `python -m pipelines.*` commands: the one place their checks live.

Numbers go through the one strict parser (pipelines.parse: ASCII digits, bounded, finite). Each
is an ``argparse`` ``type=`` callable: it returns the parsed value or raises
``ArgumentTypeError`` with a message naming the bad value, which argparse prints as
``error: argument --x: …`` with exit status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pipelines.parse import InvalidNumber, parse_decimal, parse_id, parse_int

T = TypeVar("T")


def directory(value: str) -> Path:
    """An existing folder."""
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is not a directory")
    return path


def _checked(parse: Callable[[], T]) -> T:
    try:
        return parse()
    except InvalidNumber as exc:
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[1]) from None


def unit_interval(value: str) -> float:
    """A finite number in [0, 1] (thresholds, shares)."""
    return _checked(lambda: parse_decimal(value, name="value", lo=0.0, hi=1.0))


def finite_number(value: str) -> float:
    """A finite decimal number (`1e999`, `inf` and `nan` refused)."""
    return _checked(lambda: parse_decimal(value, name="value"))


def positive_int(value: str) -> int:
    """A whole number ≥ 1 (workers, counts), ASCII digits only."""
    return _checked(lambda: parse_int(value, name="value", lo=1))


def whole_number(value: str) -> int:
    """A whole number ≥ 0 (days, counts), ASCII digits only."""
    return _checked(lambda: parse_int(value, name="value", lo=0))


def record_id(value: str) -> int:
    """A database id (a run, report or campaign number): 1 to 2^63 - 1, ASCII digits only."""
    return _checked(lambda: parse_id(value, name="id"))


__all__ = [
    "directory",
    "finite_number",
    "positive_int",
    "record_id",
    "unit_interval",
    "whole_number",
]
