"""Two release managers approving one report at the same instant: exactly one decision and one
production move; the other is told the report already has its decision. The interleaving is
forced (both pass every check before either records), on SQLite and on PostgreSQL; on PostgreSQL
a second test takes the report-row lock away to show the unique constraint alone still holds."""

from __future__ import annotations

import threading
from typing import Any
from unittest import mock

import pytest

from evalsite.releases.errors import EvidenceMoved
from evalsite.releases.models import GateConfig, ReleaseDecision, ReleaseReport
from evalsite.releases.services import decisions
from evalsite.releases.services.reports import release_report_build
from models.models import PRODUCTION, Alias, AliasMove
from tests.evals.factories import user_with
from tests.releases.builders import build_release_world, world_report
from tests.threads import run_in_threads


def _report() -> tuple[Any, ReleaseReport]:
    world = build_release_world(loss=None)
    GateConfig.objects.create(family=world.candidate.model_version.family, min_win_rate=None,
                              min_votes=0)  # fmt: skip
    report = world_report(world, enqueue=False)
    return world, release_report_build(report_id=report.pk)


def _decide_in_threads(
    report: ReleaseReport, users: list[Any], **kwargs: Any
) -> tuple[list[ReleaseDecision], list[BaseException]]:
    won: list[ReleaseDecision] = []

    def run(user: Any) -> None:
        won.append(decisions.release_decision_record(
            report=ReleaseReport.objects.get(pk=report.pk), user=user, reason="ship", **kwargs,
        ))  # fmt: skip

    return won, run_in_threads(run, users)


def _race(report: ReleaseReport, *, hold: str, **decide: Any) -> None:
    """Two release managers decide at once, each held at `decisions.<hold>` until both reach
    it; then exactly one decision is recorded and the other is told the report has one."""
    users = [user_with("release_manager", f"mgr{i}") for i in range(2)]
    barrier = threading.Barrier(2, timeout=20)
    original = getattr(decisions, hold)

    def held(**fields: Any) -> ReleaseDecision:
        barrier.wait()
        return original(**fields)

    with mock.patch.object(decisions, hold, held):
        won, errors = _decide_in_threads(report, users, **decide)

    assert not barrier.broken  # the race was real
    assert len(won) == 1 and len(errors) == 1, errors
    assert isinstance(errors[0], EvidenceMoved) and "already has its decision" in str(errors[0])
    assert ReleaseDecision.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_approvals_record_one_decision_and_one_move() -> None:
    # Given a passing report, when two release managers have both passed every check (no
    # decision yet) before either records
    world, report = _report()
    _race(report, hold="_record", decision="approve", move_production=True)

    # Then one decision and one production move, to the candidate
    assert AliasMove.objects.count() == 1
    alias = Alias.objects.get(family=world.candidate.model_version.family, name=PRODUCTION)
    assert alias.version_id == world.candidate.model_version_id


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_without_the_row_lock_the_unique_constraint_still_lets_one_win() -> None:
    # Given the report-row lock taken away, both deciders check inside their transactions and
    # both find no decision before either inserts; then the second insert meets the constraint
    _, report = _report()
    with mock.patch.object(decisions, "_lock_report", lambda report: None):
        _race(report, hold="_insert_decision", decision="reject")
