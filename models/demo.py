"""`make demo` step: register the shipped candidates and the classical baseline, idempotently.

`1.0.0` becomes `production`, `1.1.0` `candidate`, and the builtin GrabCut baseline `0.0.1`
(versions start with a digit). Validation runs inline, so the aliases point at ready versions
before the web server starts. A fixture that is not there yet is skipped with a note.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from models import services
from models.errors import RegistryError
from models.models import CANDIDATE, PRODUCTION, ModelFamily, VersionStatus

FAMILY = "subject-lift"
CANDIDATES = (("1.0.0", PRODUCTION), ("1.1.0", CANDIDATE))
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
        _register(log, version, path, spec, services.card_for_spec(spec, spec_path), alias)
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
    spec: dict[str, object],
    card: str,
    alias: str | None,
    notes: str = "",
) -> None:
    try:
        result = services.model_version_register(
            family=FAMILY,
            version=version,
            file=path,
            spec=spec,
            user=None,
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
        if not family.aliases.filter(name=alias).exists():  # never undo a manager's later move
            services.alias_move(
                family=family, name=alias, version=row, user=None, reason="demo set-up"
            )
            log(f"    {FAMILY}:{alias} -> {version}")
