"""Canonical names: the one place where family, alias, version and set names are validated.

Every door (web forms, CLI, REST API serializers, the Django admin through model validators, and
the services themselves) calls `canonical_name(raw, kind=...)`, which returns the one stored form
or raises `NameRejected` with a message that says what is wrong and what to type instead.

Why each rule (names that pass for another were found in a hardening pass):
* `re.fullmatch`, never `re.match` with `$`: `$` also matches before a trailing newline, so
  `production\\n` passed the old check.
* No control, format (zero-width, bidi override), private-use, unassigned or whitespace character
  anywhere: they make two different names print the same.
* NFKC normal form, then lower case: `Ｐroduction`, `Production` and `PRODUCTION` are the name
  `production`, so the production-only rule applies to them and uniqueness is case-insensitive.
* After normalisation only ASCII letters, digits and `. _ -`, starting and ending with a letter or
  digit: a Greek omicron in `productiοn` is refused instead of making a second "production", and
  `production.` cannot sit beside `production`.
* Look-alikes (`skeleton`): separators dropped, digits folded to the letters they resemble
  (0/1/3/5/7 → o/l/e/s/t), letter pairs folded to the letter they resemble (`rn` → m, `cl` → d,
  `vv` → w), then i → l. A family, alias or set name whose skeleton equals a reserved word's is
  refused unless it is that word (`pr0duction`, `canclidate`); families and sets may not be a
  reserved alias at all, because `production:9.9.9` must never read like an alias reference.
* `lookalike_check(name, kind=…, existing=…)`: the services pass the names of the same kind that
  already exist (families, versions of the family, aliases of the family, sets) and a new name
  that folds to one of them is refused naming it (`subject_lift`, `subject-1ift` beside
  `subject-lift`). Versions keep their separators and fold letters to digits instead
  (`version_skeleton`: `1.2.o` is `1.2.0`, `1.20` is not `12.0`), and a version part that is
  letters reading as digits (`1.2.o`, `1.0.l`) is refused on its own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, Literal

from django import forms
from django.core.exceptions import ValidationError
from rest_framework import serializers

NameKind = Literal["family", "alias", "version", "set"]

RESERVED_ALIASES = ("production", "candidate")
# URL segments that a name would shadow (models/urls.py, evalsite/datasets/urls.py).
RESERVED_FAMILY_NAMES = frozenset({"upload", "tokens", "api", "static"})
RESERVED_SET_NAMES = frozenset({"upload", "imports", "files", "new"})

_BODY = r"[a-z0-9._-]"
_PATTERNS: dict[str, re.Pattern[str]] = {
    # Versions start with a digit and aliases with a letter (platform contract: F:X is unambiguous).
    "version": re.compile(r"[0-9](?:[a-z0-9.+_-]{0,62}[a-z0-9])?"),
    "alias": re.compile(rf"[a-z](?:{_BODY}{{0,62}}[a-z0-9])?"),
    "family": re.compile(rf"[a-z0-9](?:{_BODY}{{0,98}}[a-z0-9])?"),
    "set": re.compile(rf"[a-z0-9](?:{_BODY}{{0,98}}[a-z0-9])?"),
}
MAX_LENGTH = {"version": 64, "alias": 64, "family": 100, "set": 100}
_LABEL = {"version": "version", "alias": "alias", "family": "family name", "set": "set name"}
_RULE = {
    "version": "starts with a digit (e.g. 1.1.0) and uses a-z, 0-9, . + _ -",
    "alias": "starts with a letter (e.g. candidate) and uses a-z, 0-9, . _ -",
    "family": "uses a-z, 0-9, . _ - (e.g. subject-lift)",
    "set": "uses a-z, 0-9, . _ - (e.g. pascal-s-demo)",
}
# Unicode categories never allowed: controls, format chars (ZWSP, bidi overrides), separators,
# surrogates, private use, unassigned, combining marks (they stack invisibly on a letter).
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})
_DIGITS_AS_LETTERS = str.maketrans({"0": "o", "1": "l", "3": "e", "5": "s", "7": "t"})
# Letter pairs that print like one letter in common fonts; folded after the digits, so `c1` (→ cl)
# is `d` too, and before i → l, so `ci` stays apart from `d`.
_PAIRS = (("rn", "m"), ("cl", "d"), ("vv", "w"))
_LETTERS_AS_DIGITS = str.maketrans({"o": "0", "l": "1", "i": "1"})
_SEPARATORS = re.compile(r"[._+-]")


class NameRejected(ValueError):
    """A name that cannot be stored; str(exc) is the message for the user."""


def _describe(ch: str) -> str:
    fallback = "control character" if unicodedata.category(ch) == "Cc" else "unnamed character"
    return f"U+{ord(ch):04X} {unicodedata.name(ch, fallback)}"


def _a(label: str) -> str:
    return f"an {label}" if label[0] in "aeiou" else f"a {label}"


def skeleton(name: str) -> str:
    """What a name looks like at a glance: separators dropped, look-alike characters folded."""
    folded = _SEPARATORS.sub("", name.lower()).translate(_DIGITS_AS_LETTERS)
    for pair, letter in _PAIRS:
        folded = folded.replace(pair, letter)
    return folded.replace("i", "l")


def version_skeleton(version: str) -> str:
    """A version as it reads: one separator, letters that look like digits folded to them."""
    return _SEPARATORS.sub(".", version.lower()).translate(_LETTERS_AS_DIGITS)


def _reserved_words(kind: NameKind) -> tuple[str, ...]:
    if kind == "family":
        return (*RESERVED_ALIASES, *sorted(RESERVED_FAMILY_NAMES))
    if kind == "set":
        return (*RESERVED_ALIASES, *sorted(RESERVED_SET_NAMES))
    return RESERVED_ALIASES if kind == "alias" else ()


def _check_reserved(name: str, raw: str, *, kind: NameKind) -> None:
    label = _LABEL[kind]
    urls = {"family": RESERVED_FAMILY_NAMES, "set": RESERVED_SET_NAMES}.get(kind, frozenset())
    if name in urls:
        raise NameRejected(
            f"The {label} {name!r} is reserved by the site's URLs ({', '.join(sorted(urls))}); "
            "choose another."
        )
    if kind != "alias" and name in RESERVED_ALIASES:
        raise NameRejected(
            f"The {label} {name!r} is a reserved alias: a reference such as "
            f"'{name}:{'1.0.0' if kind == 'family' else '3f2a9c'}' would read like an alias; "
            "choose another."
        )
    for word in _reserved_words(kind):
        if name != word and skeleton(name) == skeleton(word):
            what = "alias" if word in RESERVED_ALIASES else "name"
            fix = f"use {word!r} itself or" if kind == "alias" else "choose"
            raise NameRejected(
                f"The {label} {raw!r} looks like the reserved {what} {word!r}; {fix} a name "
                "that cannot be mistaken for it."
            )


def _as_number(part: str) -> str:
    digits = part.translate(_LETTERS_AS_DIGITS)
    return digits if digits.isdigit() else part


def _check_version_parts(name: str, raw: str) -> None:
    for part in _SEPARATORS.split(name):
        if not part.isdigit() and _as_number(part).isdigit():
            reads = re.sub(r"[^._+-]+", lambda m: _as_number(m.group(0)), name)
            raise NameRejected(
                f"The version {raw!r} has {part!r} where a number is expected: it reads as "
                f"{reads!r}; write the digits (0 and 1, not the letters o, l or i)."
            )


def lookalike_check(name: str, *, kind: NameKind, existing: Iterable[str]) -> None:
    """Refuse `name` (canonical) when it folds to an existing name of the same kind.

    The same name is not a look-alike of itself (a new version of an existing set, an alias
    moved again). For versions, `existing` holds the family's versions.
    """
    fold = version_skeleton if kind == "version" else skeleton
    mine = fold(name)
    label = _LABEL[kind]
    for other in existing:
        if other != name and fold(other) == mine:
            raise NameRejected(
                f"The {label} {name!r} looks like the existing {label} {other!r}; use {other!r} "
                "itself or a name that cannot be mistaken for it."
            )


def canonical_name(raw: object, *, kind: NameKind) -> str:
    """The stored form of `raw` as a name of `kind`, or NameRejected saying why not."""
    label = _LABEL[kind]
    if not isinstance(raw, str) or raw == "":
        raise NameRejected(f"Invalid {label} {raw!r}: {_a(label)} is required; it {_RULE[kind]}.")
    for ch in raw:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            raise NameRejected(
                f"The {label} {raw!r} contains an invisible, space or control character "
                f"({_describe(ch)}); type it again with visible characters only."
            )
    name = unicodedata.normalize("NFKC", raw).lower()
    odd = next((ch for ch in name if not ch.isascii()), None)
    if odd is not None:
        raise NameRejected(
            f"The {label} {raw!r} contains the non-ASCII character {odd!r} ({_describe(odd)}), "
            f"which can look like a Latin letter; {_a(label)} {_RULE[kind]}."
        )
    if len(name) > MAX_LENGTH[kind]:
        raise NameRejected(
            f"The {label} {raw!r} is {len(name)} characters long; at most {MAX_LENGTH[kind]}."
        )
    if not _PATTERNS[kind].fullmatch(name):
        hint = " (it must end with a letter or digit)" if re.search(r"[._+-]$", name) else ""
        if kind == "alias" and name[:1].isdigit():
            hint = " (names starting with a digit are versions)"
        if kind == "version" and name[:1].isalpha():
            hint = " (names starting with a letter are aliases)"
        raise NameRejected(f"Invalid {label} {raw!r}: {_a(label)} {_RULE[kind]}{hint}.")
    _check_reserved(name, raw, kind=kind)
    if kind == "version":
        _check_version_parts(name, raw)
    return name


def name_problem(raw: object, *, kind: NameKind) -> str | None:
    """Why `raw` cannot be stored as a name of `kind` (also when it is not canonical), or None."""
    try:
        name = canonical_name(raw, kind=kind)
    except NameRejected as exc:
        return str(exc)
    if name != raw:
        return f"Write the {_LABEL[kind]} {raw!r} in its canonical form {name!r}."
    return None


def _validator(kind: NameKind) -> Callable[[object], None]:
    def validate(value: object) -> None:
        problem = name_problem(value, kind=kind)
        if problem:
            raise ValidationError(problem, code="invalid_name")

    validate.__name__ = f"validate_{kind}_name"
    validate.__qualname__ = validate.__name__
    return validate


# Model-field validators (the admin and full_clean): a stored name must already be canonical.
validate_family_name = _validator("family")
validate_alias_name = _validator("alias")
validate_version_name = _validator("version")
validate_set_name = _validator("set")


class NameFormField(forms.CharField):
    """A form field that cleans to the canonical name (web forms of every app)."""

    def __init__(self, *, kind: NameKind, **kwargs: Any) -> None:
        self.kind = kind
        kwargs.setdefault("max_length", MAX_LENGTH[kind] * 4)  # NFKC may shorten the input
        kwargs.setdefault("strip", False)  # "production\n" is refused, not silently trimmed
        super().__init__(**kwargs)

    def clean(self, value: object) -> str:
        value = super().clean(value)
        if value in self.empty_values and not self.required:
            return ""
        try:
            return canonical_name(value, kind=self.kind)
        except NameRejected as exc:
            raise forms.ValidationError(str(exc), code="invalid_name") from exc


class NameSerializerField(serializers.CharField):
    """The REST API's name field: the same rules and messages as the web form."""

    def __init__(self, *, kind: NameKind, **kwargs: Any) -> None:
        self.kind = kind
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            label = _a(_LABEL[self.kind]).capitalize()
            raise serializers.ValidationError(f"{label} must be a string.")
        try:
            return canonical_name(data, kind=self.kind)
        except NameRejected as exc:
            raise serializers.ValidationError(str(exc)) from exc
