"""Release decisions (append-only) and per-family gate settings."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction

from evalsite.core.roles import can_release
from evalsite.releases.errors import ReleaseError
from evalsite.releases.models import (
    DecisionKind,
    GateConfig,
    ReleaseDecision,
    ReleaseReport,
    ReportStatus,
)
from models.errors import RegistryError
from models.models import PRODUCTION, AliasMove, ModelFamily
from models.services import alias_move

DECIDE_DENIED = "Only release managers and admins may record release decisions."


def release_decision_record(
    *,
    report: ReleaseReport,
    user: User,
    decision: str,
    reason: str,
    move_production: bool = False,
) -> ReleaseDecision:
    """Record approve / reject / needs more data with a reason; an approval may move
    `production` to the candidate in the same transaction (via the registry's alias service, so
    the move is in the alias history too). Raises PermissionDenied below release manager and
    ReleaseError for a bad decision, a missing reason or an unfinished report."""
    if not can_release(user):
        raise PermissionDenied(DECIDE_DENIED)
    if decision not in DecisionKind.values:
        raise ReleaseError(
            f"unknown decision {decision!r}; choose one of {', '.join(DecisionKind.values)}"
        )
    reason = (reason or "").strip()
    if not reason:
        raise ReleaseError("Write why (the reason is kept with the decision for good).")
    if report.status != ReportStatus.DONE:
        raise ReleaseError(f"report #{report.pk} is {report.status}; decide on a finished report")
    if move_production and decision != DecisionKind.APPROVE:
        raise ReleaseError("Only an approval can move production.")
    with transaction.atomic():
        move = None
        if move_production:
            before = AliasMove.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            try:
                alias_move(
                    family=report.candidate.family, name=PRODUCTION, version=report.candidate,
                    user=user, reason=f"release report #{report.pk} approved: {reason}",
                )  # fmt: skip
            except RegistryError as exc:  # e.g. the candidate is not a ready version
                raise ReleaseError(f"production cannot move: {exc}") from None
            move = AliasMove.objects.filter(
                pk__gt=before, alias__family=report.candidate.family, alias__name=PRODUCTION
            ).first()
        row = ReleaseDecision.objects.create(
            report=report, decision=decision, reason=reason, decided_by=user, alias_move=move
        )
        if move is not None:
            from evalsite.releases.services.leaderboard import leaderboard_refresh

            transaction.on_commit(leaderboard_refresh)
    return row


GATE_FIELDS = (
    "metric_margins", "improvement_margin", "fairness_margin", "min_group_size",
    "latency_budget_ms", "min_win_rate", "min_votes", "alpha",
)  # fmt: skip


def gate_config_update(*, family: ModelFamily, user: User, **values: Any) -> GateConfig:
    """Create or change a family's gates (release managers and admins)."""
    if not can_release(user):
        raise PermissionDenied("Only release managers and admins may change release gates.")
    unknown = set(values) - set(GATE_FIELDS)
    if unknown:
        raise ReleaseError(f"unknown gate settings: {', '.join(sorted(unknown))}")
    margins = values.get("metric_margins")
    if margins is not None:
        from pipelines.metrics.registry import names, stored_metrics

        # Gates test paired deltas, which exist for the per-image metrics a report pairs.
        known = names(stored_metrics())
        bad = [k for k in margins if k not in known]
        if bad or not all(isinstance(v, int | float) and v >= 0 for v in margins.values()):
            raise ReleaseError(
                "metric_margins maps metric names "
                f"({', '.join(known)}) to margins >= 0; bad: {bad or margins}"
            )
    with transaction.atomic():
        config, _ = GateConfig.objects.select_for_update().get_or_create(family=family)
        for key, value in values.items():
            setattr(config, key, value)
        config.updated_by = user
        config.save()
    return config
