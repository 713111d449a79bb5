"""`make demo` step: register the shipped candidates and the classical baseline, idempotently.

`1.0.0` becomes `production`, `1.2.0` (fine-tuned from its parent `1.1.0`, with a working
confidence gate) `candidate`, `1.1.0` `previous-candidate`, and the builtin GrabCut baseline
`0.0.1` (versions start with a digit). Validation runs inline, so the aliases point at ready
versions before the web server starts. A fixture that is not there yet is skipped with a note.
An alias the demo itself set earlier follows the demo's current choice (a demo database from
before 1.2.0 gets `candidate` moved to it); one a person moved since is left alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from models import services
from models.errors import RegistryError
from models.models import CANDIDATE, PRODUCTION, Alias, ModelFamily, VersionStatus
from pipelines.payloads import JsonObject

FAMILY = "subject-lift"
PREVIOUS_CANDIDATE = "previous-candidate"
DEMO_REASON = "demo set-up"
#: (version, alias), parents before children.
CANDIDATES = (("1.0.0", PRODUCTION), ("1.1.0", PREVIOUS_CANDIDATE), ("1.2.0", CANDIDATE))
#: Lineage: 1.2.0 was fine-tuned from 1.1.0's weights (its card says so).
PARENTS: dict[str, str] = {"1.2.0": "1.1.0"}
BASELINE_VERSION = "0.0.1"
BASELINE = "saliency-grabcut"


def fixture_path(version: str) -> Path:
    return Path(settings.BASE_DIR) / "fixtures" / "models" / f"{FAMILY}-{version}.pt2"


def setup(log: Callable[[str], None]) -> None:
    log("==> registering demo models")
    for version, alias in CANDIDATES:
        path = fixture_path(version)
        spec_path = Path(f"{path}.spec.json")
        if not path.is_file() or not spec_path.is_file():
            log(f"    skipped {FAMILY}:{version}: {path.name} (+ .spec.json) not found yet")
            continue
        spec = json.loads(spec_path.read_text())
        card = services.card_for_spec(spec, spec_path)
        _register(log, version, path, spec, card, alias, parent=PARENTS.get(version))
    from pipelines.runners.builtin import builtin_spec

    _register(
        log,
        BASELINE_VERSION,
        None,
        builtin_spec(BASELINE),
        "",
        None,
        notes="Classical baseline: spectral-residual saliency + GrabCut around a centre "
        "prior (no learning).",
    )


def _register(
    log: Callable[[str], None],
    version: str,
    path: Path | None,
    spec: JsonObject,
    card: str,
    alias: str | None,
    notes: str = "",
    parent: str | None = None,
) -> None:
    try:
        result = services.model_version_register(
            family=FAMILY,
            version=version,
            file=path,
            spec=spec,
            user=None,
            parent=parent,
            card=card,
            notes=notes,
            original_filename=path.name if path else "",
            validate="inline",
        )
    except RegistryError as exc:  # e.g. a retrained fixture under an existing version
        log(f"    {FAMILY}:{version}: {exc}")
        return
    row = result.version
    state = "unchanged" if not result.created else row.status
    log(f"    {row.ref}: {state}" + (f" ({row.rejection_reason})" if row.rejection_reason else ""))
    if alias and row.status == VersionStatus.READY:
        family = ModelFamily.objects.get(name=FAMILY)
        current = family.aliases.filter(name=alias).first()
        if current is None or (current.version_id != row.pk and _set_by_demo(current)):
            services.alias_move(
                family=family, name=alias, version=row, user=None, reason=DEMO_REASON
            )
            log(f"    {FAMILY}:{alias} -> {version}")


def _set_by_demo(alias: Alias) -> bool:
    """Whether the alias's latest move is the demo's own (never undo a person's later move)."""
    last = alias.moves.order_by("-moved_at", "-pk").first()
    return last is not None and last.moved_by_id is None and last.reason == DEMO_REASON
