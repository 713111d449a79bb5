"""Form and serializer fields that read numbers through the one strict parser (pipelines.parse).

Django's own IntegerField and FloatField call int() / float(), which accept other scripts' digits
(`١٢` is 12) and have no upper bound unless one is given (10**30 reached a database column and
answered 500). These read ASCII only, refuse non-finite values, and always carry a bound.
"""

from __future__ import annotations

from typing import Any

from django import forms
from rest_framework import serializers

from pipelines.parse import DIGITS, MAX_ID, InvalidNumber, check_number, parse_decimal, parse_int


class WholeNumberField(forms.IntegerField):
    """A whole number of ASCII digits within [min_value, max_value] (max_value defaults to the
    largest id a database holds)."""

    def __init__(self, *, max_value: int = MAX_ID, **kwargs: Any) -> None:
        super().__init__(max_value=max_value, **kwargs)

    def to_python(self, value: object) -> int | None:
        if value in self.empty_values:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        try:
            return parse_int(text, name=str(self.label or "value"), signed=True, max_digits=30)
        except InvalidNumber:
            negative = text.startswith("-")
            limit = self.min_value if negative else self.max_value
            if DIGITS.fullmatch(text.lstrip("+-")) and limit is not None:  # too many digits
                word = "greater" if negative else "less"
                raise forms.ValidationError(
                    f"Ensure this value is {word} than or equal to {limit}.", code="invalid"
                ) from None
            raise forms.ValidationError(
                "Enter a whole number (digits 0-9).", code="invalid"
            ) from None


class DecimalNumberField(forms.FloatField):
    """A finite ASCII decimal number (`0.5`, `1e-3`); inf, nan and `1e999` are refused."""

    def to_python(self, value: object) -> float | None:  # type: ignore[override]
        if value in self.empty_values:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        try:
            return parse_decimal(str(value), name=str(self.label or "value"))
        except InvalidNumber:
            raise forms.ValidationError(
                "Enter a finite number such as 0.5 (digits 0-9).", code="invalid"
            ) from None


# --- The same for REST framework serializers ----------------------------------------------------


class ApiWholeNumber(serializers.IntegerField):
    """A JSON integer, or a string of ASCII digits, within [min_value, max_value] (max_value
    defaults to the largest id); bools and floats are refused."""

    def __init__(self, *, max_value: int = MAX_ID, **kwargs: Any) -> None:
        super().__init__(max_value=max_value, **kwargs)

    def to_internal_value(self, data: object) -> int:
        try:
            if isinstance(data, str):
                return parse_int(data.strip(), name=self.field_name or "value", signed=True,
                                 max_digits=30)  # fmt: skip
            return int(check_number(data, name=self.field_name or "value", integer=True))
        except InvalidNumber:
            self.fail("invalid")
            raise  # unreachable: fail() raises


class ApiDecimalNumber(serializers.FloatField):
    """A finite JSON number, or a string of an ASCII decimal; `"nan"` and `"inf"` (which float()
    reads and a range check lets through: nan compares false) are refused."""

    def to_internal_value(self, data: object) -> float:
        try:
            if isinstance(data, str):
                return parse_decimal(data, name=self.field_name or "value")
            return float(check_number(data, name=self.field_name or "value"))
        except InvalidNumber:
            self.fail("invalid")
            raise


__all__ = ["ApiDecimalNumber", "ApiWholeNumber", "DecimalNumberField", "WholeNumberField"]
