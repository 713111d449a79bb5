"""The data a model version declares it was built with, by role (spec ``training`` object).

Why three roles: a set can make a version look better without being its training data. Images
its weights were fitted on (``trained``), images a setting was picked on (``tuned``: the gate
threshold, a loss weight) and images a checkpoint or an interpolation weight was chosen by
(``selected``) all favour that version on any set that contains them. The contract's schema
names ``training.image_sha256`` (trained); its ``training`` object allows extra properties, and
``tuned_image_sha256`` / ``selected_image_sha256`` hold the other two roles, as the sha256 of each
image file, exactly like ``image_sha256``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: role -> key under the spec's ``training`` object (order: how the pages list them).
ROLE_FIELDS: dict[str, str] = {
    "trained": "image_sha256",
    "tuned": "tuned_image_sha256",
    "selected": "selected_image_sha256",
}
ROLES: tuple[str, ...] = tuple(ROLE_FIELDS)
DIGEST_FIELDS: frozenset[str] = frozenset(ROLE_FIELDS.values())
#: Same rule as the schema's pattern for ``image_sha256``: hashlib's lowercase hex digest.
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
DIGEST_RULE = "must be the sha256 of an image file (64 lowercase hex digits)"
#: Bad digests named one by one before the rest are counted (a pasted wrong list is hundreds).
MAX_LISTED = 5


def declared_data(spec: Mapping[str, Any] | None) -> dict[str, frozenset[str]]:
    """role -> the image digests the spec declares for it (empty set when not declared)."""
    training = (spec or {}).get("training")
    if not isinstance(training, Mapping):
        training = {}
    out: dict[str, frozenset[str]] = {}
    for role, key in ROLE_FIELDS.items():
        values = training.get(key)
        out[role] = frozenset(v for v in values if isinstance(v, str)) if values else frozenset()
    return out


def _is_digest(value: object) -> bool:
    return isinstance(value, str) and SHA256_HEX.match(value) is not None


def declared_data_problems(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(JSON path, message) for each declared-data field that is not a list of sha256 digests.

    ``image_sha256`` is checked by the schema; the two extra roles are checked here with the same
    rule, so a typo in a digest is refused at registration instead of silently matching nothing.
    """
    training = spec.get("training")
    if not isinstance(training, Mapping):
        return []
    problems: list[tuple[str, str]] = []
    for role, key in ROLE_FIELDS.items():
        if role == "trained" or key not in training:
            continue
        path = f"training.{key}"
        values = training[key]
        if not isinstance(values, list):
            problems.append(
                (
                    path,
                    f"must be a list of sha256 digests of the images the version was {role} on, "
                    f"got {type(values).__name__}",
                )
            )
            continue
        bad = [(i, v) for i, v in enumerate(values) if not _is_digest(v)]
        for i, value in bad[:MAX_LISTED]:
            problems.append((f"{path}[{i}]", f"{DIGEST_RULE}, got {value!r}"))
        if len(bad) > MAX_LISTED:
            problems.append((path, f"{len(bad) - MAX_LISTED} more entries are not sha256 digests"))
    return problems
