"""The one strict parser of numbers and ids that arrive as text: URLs, query strings, forms,
manifests, file names, command lines, JSON bodies.

Why not `str.isdigit()` and `int()`: `"²".isdigit()` is true and `int("²")` raises, while
`int("١٢")` (Arabic-Indic digits), `int(" 1_0 ")` and `float("1e999")` (inf) all succeed. Here a
number is ASCII digits only, of bounded length and within the caller's range; anything else
raises `InvalidNumber` (a ValueError) whose message names the value and what was expected, and
never quotes more than `QUOTE_CHARS` of the input.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: The largest id a database integer column holds (PostgreSQL bigint, SQLite INTEGER).
MAX_ID = 2**63 - 1
#: Whole numbers longer than this are refused before conversion (int() of 10^6 digits is slow).
MAX_DIGITS = 19
#: Decimal texts longer than this are refused (a float carries 17 significant digits).
MAX_DECIMAL_CHARS = 64
QUOTE_CHARS = 40
#: JSON bodies: how deep arrays and objects may nest, and how large the text may be.
JSON_MAX_DEPTH = 64
JSON_MAX_BYTES = 10 * 1024 * 1024

#: ASCII digits only (`str.isdigit()` is also true for `²`, `١٢`, `①`); use with fullmatch.
DIGITS = re.compile(r"[0-9]+", re.ASCII)
_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?", re.ASCII)


class InvalidInput(ValueError):
    """Input that is not what was asked for; str(exc) names the value and what is expected.

    Not retryable: a job whose input is malformed fails the same way every time (the job
    primitive reads `retryable`), unlike a database or storage fault."""

    retryable = False


class InvalidNumber(InvalidInput):
    """Text that is not the number asked for; str(exc) says which value and what is expected."""


class InvalidJSON(InvalidInput):
    """A JSON text that is malformed, too deep, too large, or holds a non-finite number."""


def quote(text: object) -> str:
    """`text` as repr, cut to QUOTE_CHARS characters (a message never echoes a whole body)."""
    s = str(text)
    return repr(s) if len(s) <= QUOTE_CHARS else repr(s[:QUOTE_CHARS]) + "…"


def _range_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"from {lo} to {hi}"
    if lo is not None:
        return f"at least {lo}"
    return f"at most {hi}"


def parse_int(
    text: str | None,
    *,
    name: str,
    lo: int | None = None,
    hi: int | None = None,
    signed: bool = False,
    max_digits: int = MAX_DIGITS,
) -> int:
    """ASCII digits (and a sign only when `signed`), at most `max_digits`, within [lo, hi]."""
    raw = "" if text is None else str(text)
    sign = raw.startswith(("+", "-"))
    if not _INT.fullmatch(raw) or (sign and not signed):
        what = "a whole number" if signed else "a whole number of digits 0-9"
        raise InvalidNumber(f"{name}: expected {what}, got {quote(raw)}")
    digits = len(raw) - sign
    if digits > max_digits:  # refused before int() is asked to read a million digits
        what = _range_text(lo, hi) if lo is not None or hi is not None else (
            f"of at most {max_digits} digits"
        )  # fmt: skip
        raise InvalidNumber(f"{name}: expected a whole number {what}, got a {digits}-digit number")
    value = int(raw)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InvalidNumber(f"{name}: expected a whole number {_range_text(lo, hi)}, got {value}")
    return value


def parse_id(text: str | None, *, name: str) -> int:
    """A database id: a whole number from 1 to MAX_ID."""
    return parse_int(text, name=name, lo=1, hi=MAX_ID)


def int_or_none(text: str | None, *, lo: int | None = None, hi: int | None = None) -> int | None:
    """The number `text` spells (ASCII digits, bounded, within [lo, hi]), else None: for names
    that may or may not be numbers (file stems `3.png`, scale labels `7`)."""
    try:
        return parse_int(text, name="value", lo=lo, hi=hi)
    except InvalidNumber:
        return None


def is_id(text: str | None) -> bool:
    """True when `text` parses as a database id (callers that also accept names)."""
    try:
        parse_id(text, name="id")
    except InvalidNumber:
        return False
    return True


def parse_decimal(
    text: str | None, *, name: str, lo: float | None = None, hi: float | None = None
) -> float:
    """An ASCII decimal (`0.5`, `-1e-3`), finite, within [lo, hi]; never inf/nan."""
    raw = "" if text is None else str(text).strip()
    if len(raw) > MAX_DECIMAL_CHARS or not _DECIMAL.fullmatch(raw):
        raise InvalidNumber(f"{name}: expected a decimal number such as 0.5, got {quote(raw)}")
    return check_number(float(raw), name=name, lo=lo, hi=hi)


def check_number(
    value: object,
    *,
    name: str,
    lo: float | None = None,
    hi: float | None = None,
    integer: bool = False,
) -> Any:
    """A number that came parsed (JSON, a form): finite, not a bool, within [lo, hi]."""
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        what = "a whole number" if integer else "a number"
        raise InvalidNumber(f"{name}: expected {what}, got {quote(value)}")
    number: float = value  # type: ignore[assignment]  # an int or a float, checked above
    if isinstance(number, float) and not math.isfinite(number):
        raise InvalidNumber(f"{name}: expected a finite number, got {number}")
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        # str() of an int past 4300 digits raises; its logarithm says how long it is
        digits = math.floor(math.log10(abs(number))) + 1 if number else 1
        shown = number if digits <= MAX_DIGITS else f"a {digits}-digit number"
        raise InvalidNumber(f"{name}: expected a number {_range_text(lo, hi)}, got {shown}")
    return value


def _refuse_constant(constant: str) -> float:
    raise InvalidJSON(f"{constant} is not valid JSON; numbers must be finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJSON(f"{quote(text)} overflows a number; numbers must be finite")
    return value


def json_depth(value: Any, limit: int) -> int:
    """How deep `value` nests (a scalar is 0), counted up to limit + 1 (then it stops)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def loads_json(
    text: str | bytes,
    *,
    max_depth: int = JSON_MAX_DEPTH,
    max_bytes: int = JSON_MAX_BYTES,
) -> Any:
    """json.loads, bounded: at most `max_bytes`, nested at most `max_depth`, finite numbers only
    (NaN, Infinity and 1e999 refused). Raises InvalidJSON with the reason."""
    if len(text) > max_bytes:
        raise InvalidJSON(f"the JSON is {len(text)} bytes; at most {max_bytes} are accepted")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidJSON("the JSON is not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except InvalidJSON:
        raise
    except RecursionError:  # the C scanner stops at the interpreter's recursion limit
        raise InvalidJSON(f"the JSON is nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise InvalidJSON(f"the JSON is not valid ({exc.msg} at line {exc.lineno})") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise InvalidJSON(f"the JSON is not valid: {exc}") from None
    if json_depth(value, max_depth) > max_depth:
        raise InvalidJSON(f"the JSON is nested deeper than {max_depth} levels")
    return value


__all__ = [
    "DIGITS",
    "JSON_MAX_BYTES",
    "JSON_MAX_DEPTH",
    "MAX_ID",
    "InvalidInput",
    "InvalidJSON",
    "InvalidNumber",
    "check_number",
    "int_or_none",
    "is_id",
    "json_depth",
    "loads_json",
    "parse_decimal",
    "parse_id",
    "parse_int",
    "quote",
]
