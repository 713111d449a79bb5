"""Release decisions (append-only) and per-family gate settings."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from evalsite.core.roles import can_release
from evalsite.core.text import text_problems
from evalsite.releases.errors import EvidenceMoved, OverrideRequired, ReleaseError
from evalsite.releases.models import (
    DecisionKind,
    GateConfig,
    ReleaseDecision,
    ReleaseReport,
    ReportStatus,
    Verdict,
)
from models.errors import RegistryError
from models.models import PRODUCTION, Alias, AliasMove, ModelFamily
from models.services import alias_move
from pipelines.release.gate_settings import gate_settings_problems

DECIDE_DENIED = "Only release managers and admins may record release decisions."


#: Spellings the command line and the API accept for "needs more data".
DECISION_ALIASES = {
    "more-data": DecisionKind.NEEDS_MORE_DATA,
    "more_data": DecisionKind.NEEDS_MORE_DATA,
}


def _already_decided(report: ReleaseReport) -> EvidenceMoved:
    first = (
        ReleaseDecision.objects.filter(report=report, duplicate_before_unique=False)
        .select_related("decided_by")
        .first()
    )
    said = (
        f" ({first.get_decision_display()} by {first.decided_by or 'the operator'} at "
        f"{first.decided_at:%Y-%m-%d %H:%M})"
        if first is not None
        else ""
    )
    return EvidenceMoved(
        f"report #{report.pk} already has its decision{said}; a report takes one decision. "
        "To decide again, rebuild the report and decide on the new one."
    )


def _check_evidence(report: ReleaseReport) -> None:
    """Approve + move production: the baseline must be production now and the evidence fresh.
    Runs under the production alias's row lock, so no move can slip in between."""
    from evalsite.releases.services.evidence import report_staleness

    family = report.candidate.family
    production = (
        Alias.objects.select_for_update()
        .select_related("version")
        .filter(family=family, name=PRODUCTION)
        .first()
    )
    if production is not None and production.version_id != report.baseline_id:
        raise EvidenceMoved(
            f"production points to {production.version.ref} now, but report #{report.pk} "
            f"compares {report.candidate.ref} with {report.baseline.ref}: its numbers say "
            "nothing about the version users get. Build a new report against production "
            f"(baseline {family.name}:{PRODUCTION}) and decide on that one."
        )
    staleness = report_staleness(report)
    if staleness.stale:
        raise EvidenceMoved(
            f"report #{report.pk} is stale: {'; '.join(staleness.reasons)}. Rebuild it (the "
            "rebuild button on the report page) and decide on the new report."
        )


def release_decision_record(
    *,
    report: ReleaseReport,
    user: User,
    decision: str,
    reason: str,
    move_production: bool = False,
    override: str = "",
) -> ReleaseDecision:
    """Record the one decision of a report (approve / reject / needs more data) with a reason;
    an approval may move `production` to the candidate in the same transaction (via the
    registry's alias service, so the move is in the alias history too).

    Raises PermissionDenied below release manager; OverrideRequired when approving a verdict
    other than pass without an override reason; EvidenceMoved when the report already has a
    decision, or (approve + move production) when its baseline is not production now or it is
    stale; ReleaseError for a bad decision, a missing reason or an unfinished report.
    Concurrent submits: the report row is locked and the one-decision constraint backs it up,
    so exactly one wins and the others get EvidenceMoved."""
    if not can_release(user):
        raise PermissionDenied(DECIDE_DENIED)
    decision = DECISION_ALIASES.get(decision, decision)
    if decision not in DecisionKind.values:
        raise ReleaseError(f"unknown decision {decision!r}; choose approve, reject or more-data")
    reason = (reason or "").strip()
    if not reason:
        raise ReleaseError("Write why (the reason is kept with the decision for good).")
    too_long = text_problems({"reason": reason, "override": override or ""})
    if too_long:
        raise ReleaseError(" ".join(too_long))
    if report.status != ReportStatus.DONE:
        raise ReleaseError(f"report #{report.pk} is {report.status}; decide on a finished report")
    if move_production and decision != DecisionKind.APPROVE:
        raise ReleaseError("Only an approval can move production.")
    if ReleaseDecision.objects.filter(report=report, duplicate_before_unique=False).exists():
        raise _already_decided(report)
    override = (override or "").strip()
    if decision == DecisionKind.APPROVE and report.verdict != Verdict.PASS and not override:
        raise OverrideRequired(
            f"report #{report.pk}'s verdict is {report.verdict!r}, not pass: approving it needs "
            "an override reason that says why you approve anyway (the override field, or "
            "--override TEXT). It is kept with the decision and shown on the leaderboard."
        )
    if decision != DecisionKind.APPROVE:
        override = ""  # an override explains an approval against the verdict only
    return _record(
        report=report, user=user, decision=decision, reason=reason, override=override,
        move_production=move_production,
    )  # fmt: skip


def _lock_report(report: ReleaseReport) -> None:
    """Serialise concurrent decisions on one report (PostgreSQL row lock; SQLite transactions
    are IMMEDIATE, so they are serialised already)."""
    ReleaseReport.objects.select_for_update().filter(pk=report.pk).values_list("pk").first()


def _insert_decision(**fields: Any) -> ReleaseDecision:
    """The one-decision-per-report constraint is the backstop behind the lock: a second insert
    fails, whatever the interleaving."""
    try:
        with transaction.atomic():
            return ReleaseDecision.objects.create(**fields)
    except IntegrityError:
        raise _already_decided(fields["report"]) from None


def _record(
    *, report: ReleaseReport, user: User, decision: str, reason: str, override: str,
    move_production: bool,
) -> ReleaseDecision:  # fmt: skip
    with transaction.atomic():
        _lock_report(report)
        if ReleaseDecision.objects.filter(report=report, duplicate_before_unique=False).exists():
            raise _already_decided(report)
        move = None
        if move_production:
            _check_evidence(report)
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
        row = _insert_decision(
            report=report, decision=decision, reason=reason, override=override,
            verdict=report.verdict, inputs=report.inputs or {}, decided_by=user,
            alias_move=move,
        )  # fmt: skip
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
    # The one check of every door (this service, the admin's form): finite numbers, and no
    # gate that could never pass; each problem names the setting and why.
    problems = gate_settings_problems(values)
    if problems:
        raise ReleaseError("; ".join(problems))
    with transaction.atomic():
        config, _ = GateConfig.objects.select_for_update().get_or_create(family=family)
        for key, value in values.items():
            setattr(config, key, value)
        config.updated_by = user
        config.save()
    return config
