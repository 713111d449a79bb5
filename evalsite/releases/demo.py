"""`make demo` step of the release app: the demo's release reports, reachable from the leaderboard.

1. `subject-lift:candidate` vs `subject-lift:production` on `pascal-s-demo`: the photos the
   candidate was tuned and selected on, so the report names its quality gates as biased evidence.
2. The same pair on `pascal-s-test` (photos nobody trained, tuned or selected on) with the demo's
   rating campaign over that pair (ratings' demo step, seeded with simulated votes): the report a
   release manager decides on. Built last, so the leaderboard banner shows its verdict.

Both versions are resolved through the aliases, never hard-coded. Runs after the eval app's step
has waited for the runs and the ratings app opened its campaign (apps run in INSTALLED_APPS
order). Built in this process (the same service the report job calls), so the demo ends with a
verdict. Idempotent: a finished report over the same runs and campaign, built after the
campaign's newest rating, is reused; once someone has rated since, the next start builds a new
one that counts their votes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evalsite.releases.errors import ReleaseError
from evalsite.releases.models import ReleaseReport, ReportStatus
from evalsite.releases.services.leaderboard import leaderboard_refresh
from evalsite.releases.services.refs import ReportRefs, resolve_refs
from evalsite.releases.services.reports import (
    primary_run_of,
    release_report_create,
    release_report_run_now,
)

Log = Callable[[str], object]
#: The set the candidate was tuned/selected on: its report shows the biased-evidence warning.
DEMO_SET = "pascal-s-demo"
#: The demo's test set: the report the demo's decision is about.
TEST_SET = "pascal-s-test"
#: The set with person attributes whose fairness groups the suite report reads.
PEOPLE_SET = "synthetic-people"
DEMO_CANDIDATE = "subject-lift:candidate"


def _demo_campaign(refs: ReportRefs) -> Any:
    from ratings.demo import demo_campaign

    runs = [primary_run_of(model_version=v, dataset_version=refs.dataset_version)
            for v in (refs.candidate, refs.baseline)]  # fmt: skip
    if None in runs:
        return None
    return demo_campaign(refs.dataset_version, [r for r in runs if r is not None])


def _reusable(refs: ReportRefs, runs: list[Any], campaign: Any) -> ReleaseReport | None:
    existing = (
        ReleaseReport.objects.filter(candidate_run=runs[0], baseline_run=runs[1],
                                     campaign=campaign, status=ReportStatus.DONE)
        .order_by("-created_at", "-pk").first()
    )  # fmt: skip
    if existing is None or campaign is None:
        return existing
    newest = campaign.ratings.order_by("-created_at").values_list("created_at", flat=True).first()
    return existing if newest is None or newest <= existing.created_at else None


def _report(log: Log, dataset: str, *, with_campaign: bool) -> ReleaseReport | None:
    try:
        refs = resolve_refs(candidate=DEMO_CANDIDATE, dataset=dataset)
    except ReleaseError as exc:
        log(f"==> release report on {dataset}: skipped ({exc})")
        return None
    runs = [primary_run_of(model_version=v, dataset_version=refs.dataset_version)
            for v in (refs.candidate, refs.baseline)]  # fmt: skip
    if None in runs:
        log(f"==> release report: {refs.candidate.ref} or {refs.baseline.ref} has no finished "
            f"run on {refs.dataset_version.spec}; skipped")  # fmt: skip
        return None
    campaign = _demo_campaign(refs) if with_campaign else None
    try:
        report = _reusable(refs, runs, campaign) or release_report_run_now(
            report=release_report_create(
                candidate=refs.candidate, baseline=refs.baseline,
                dataset_version=refs.dataset_version, campaign=campaign, enqueue=False,
            )
        )  # fmt: skip
    except Exception as exc:  # the demo goes on; the report row says why
        log(f"==> release report on {dataset}: failed ({type(exc).__name__}: {exc})")
        return None
    log(f"==> release report #{report.pk}: {report.candidate.ref} vs {report.baseline.ref} on "
        f"{refs.dataset_version.spec}"
        + (f" with campaign #{campaign.pk}" if campaign is not None else "")
        + f": {report.verdict} — /releases/reports/{report.pk}/")  # fmt: skip
    return report


def after_start(log: Log) -> None:
    _report(log, DEMO_SET, with_campaign=False)
    suite = _report(log, TEST_SET, with_campaign=True)
    leaderboard_refresh(force=True)
    if suite is not None:
        log(f"    the leaderboard (home page) shows report #{suite.pk}'s verdict")
