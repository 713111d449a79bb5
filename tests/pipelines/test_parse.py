"""The one strict parser of numbers, ids and JSON texts (pipelines/parse.py)."""

from __future__ import annotations

import json
import math

import pytest

from pipelines.parse import (
    MAX_ID,
    InvalidJSON,
    InvalidNumber,
    check_number,
    int_or_none,
    is_id,
    json_depth,
    loads_json,
    parse_decimal,
    parse_id,
    parse_int,
)

pytestmark = pytest.mark.no_services

# Each is a digit to str.isdigit() or a number to int()/float(), and none is one here.
NOT_ASCII_NUMBERS = ["²", "١٢", "①", "１２", "𝟙", "1_000", " 12", "12\n", "0x10", "1e3", "", "-"]


@pytest.mark.parametrize("text", NOT_ASCII_NUMBERS)
def test_only_ascii_digits_are_whole_numbers(text: str) -> None:
    with pytest.raises(InvalidNumber, match="set: expected a whole number"):
        parse_int(text, name="set")
    assert int_or_none(text) is None and not is_id(text)


def test_python_would_have_read_some_of_them() -> None:
    """Why the parser exists: int() reads other scripts' digits, isdigit() is true for ²."""
    assert int("١٢") == 12 and "²".isdigit()
    with pytest.raises(ValueError, match="invalid literal"):
        int("²")


def test_bounds_signs_and_length() -> None:
    assert parse_int("007", name="n") == 7
    assert parse_int("-3", name="n", signed=True) == -3
    with pytest.raises(InvalidNumber, match="digits 0-9, got '-3'"):
        parse_int("-3", name="n")
    with pytest.raises(InvalidNumber, match="from 1 to 5, got 6"):
        parse_int("6", name="n", lo=1, hi=5)
    with pytest.raises(InvalidNumber, match="of at most 19 digits, got a 10000-digit number"):
        parse_int("9" * 10_000, name="n")  # refused before int() is asked to read it
    with pytest.raises(InvalidNumber, match=r"got '9{40}'…$"):
        parse_int("9" * 10_000 + "x", name="n")  # quoted, cut to 40 characters
    assert parse_id(str(MAX_ID), name="pk") == MAX_ID
    for bad in ("0", str(MAX_ID + 1), "99999999999999999999999"):
        with pytest.raises(InvalidNumber):
            parse_id(bad, name="pk")
    assert int_or_none("3", lo=1, hi=10) == 3 and int_or_none("11", lo=1, hi=10) is None


@pytest.mark.parametrize(
    ("text", "value"), [("0.5", 0.5), ("-1e-3", -0.001), (".25", 0.25), ("3", 3.0), ("2.", 2.0)]
)
def test_decimals(text: str, value: float) -> None:
    assert parse_decimal(text, name="x") == value


@pytest.mark.parametrize("text", ["inf", "nan", "1e999", "-1e999", "٠.٥", "0,5", "1e", "1e99999"])
def test_decimals_are_finite_and_ascii(text: str) -> None:
    with pytest.raises(InvalidNumber, match="x: expected"):
        parse_decimal(text, name="x")


def test_parsed_numbers_are_checked_for_kind_finiteness_and_range() -> None:
    assert check_number(0.5, name="r", lo=0, hi=1) == 0.5
    for bad, why in [(True, "expected a number"), ("1", "expected a number"),
                     (math.inf, "finite"), (math.nan, "finite"), (5, "from 0 to 1")]:  # fmt: skip
        with pytest.raises(InvalidNumber, match=why):
            check_number(bad, name="r", lo=0, hi=1)
    with pytest.raises(InvalidNumber, match="a 31-digit number"):
        check_number(10**30, name="n", hi=10, integer=True)
    with pytest.raises(InvalidNumber, match="a 5001-digit number"):  # str() of it would raise
        check_number(-(10**5000), name="n", lo=0, integer=True)
    with pytest.raises(InvalidNumber, match="whole number"):
        check_number(1.5, name="n", integer=True)


def test_json_is_bounded_in_depth_size_and_numbers() -> None:
    assert loads_json('{"a": [1, 2.5, {"b": null}]}') == {"a": [1, 2.5, {"b": None}]}
    assert loads_json(b"[[1]]", max_depth=2) == [[1]]
    cases = [
        ("[" * 100_000, "nested deeper than 64"),
        ("[" * 65 + "]" * 65, "nested deeper than 64"),
        ('{"iou": Infinity}', "Infinity is not valid JSON"),
        ('{"iou": NaN}', "NaN is not valid JSON"),
        ('{"iou": 1e999}', "overflows"),
        ("{nope", "not valid"),
        (b"\xff\xfe", "not UTF-8"),
        ("1" * 5000, "not valid"),  # an integer past Python's 4300-digit limit
    ]
    for text, why in cases:
        with pytest.raises(InvalidJSON, match=why):
            loads_json(text)
    with pytest.raises(InvalidJSON, match="at most 100 are accepted"):
        loads_json("[" + "1," * 100 + "1]", max_bytes=100)


def test_depth_agrees_with_the_structure() -> None:
    doc = {"a": [1, {"b": [[]]}], "c": 2}
    assert json_depth(doc, 10) == 5 and json_depth(1, 10) == 0
    assert json_depth(json.loads("[" * 50 + "]" * 50), 10) == 11  # stops past the limit
