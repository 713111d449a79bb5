"""`make demo` step of the release app: the demo's release reports, reachable from the leaderboard.

1. `subject-lift:candidate` vs `subject-lift:production` on `pascal-s-demo`: the photos the
   candidate was tuned and selected on, so the report names its quality gates as biased evidence.
2. The same pair over the suite `pascal-s-test` (photos nobody trained, tuned or selected on:
   quality) + `synthetic-people` (person attributes: fairness) with the demo's rating campaign over
   the pair on `pascal-s-test` (ratings' demo step, seeded with simulated votes): the report a
   release manager decides on, every gate with its evidence. Built last, so the leaderboard
   banner shows its verdict.

Both versions are resolved through the aliases, never hard-coded. Runs after the eval app's step
has waited for the runs and the ratings app opened its campaign (apps run in INSTALLED_APPS
order). Built in this process through the report's job. Idempotent: the newest finished report
over the same pair, suite and campaign is reused while it is not stale; once someone has rated
(or a run or attribute revision moved on), the next start builds a new one that counts it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from evalsite.evals.selectors import primary_run
from evalsite.releases.errors import ReleaseError
from evalsite.releases.models import ReleaseReport, ReportStatus
from evalsite.releases.selectors import release_report_payload, report_staleness
from evalsite.releases.services.leaderboard import leaderboard_refresh
from evalsite.releases.services.refs import ReportRefs, resolve_refs
from evalsite.releases.services.reports import (
    release_report_create,
    release_report_run_now,
)

Log = Callable[[str], object]
#: The set the candidate was tuned/selected on: its report shows the biased-evidence warning.
DEMO_SET = "pascal-s-demo"
#: The demo's test set (quality, and the campaign's set) and the set with person attributes.
TEST_SET = "pascal-s-test"
PEOPLE_SET = "synthetic-people"
SUITE = (TEST_SET, PEOPLE_SET)
DEMO_CANDIDATE = "subject-lift:candidate"


def _demo_campaign(refs: ReportRefs) -> Any:
    from ratings.demo import demo_campaign

    runs = [primary_run(model_version=v, dataset_version=refs.dataset_version)
            for v in (refs.candidate, refs.baseline)]  # fmt: skip
    if runs[0] is None or runs[1] is None:
        return None
    return demo_campaign(refs.dataset_version, [runs[0], runs[1]])


def _reusable(refs: ReportRefs, campaign: Any) -> ReleaseReport | None:
    suite = [dv.pk for dv in refs.dataset_versions]
    done = ReleaseReport.objects.filter(
        candidate=refs.candidate, baseline=refs.baseline, campaign=campaign,
        status=ReportStatus.DONE,
    ).order_by("-created_at", "-pk")  # fmt: skip
    for report in done[:5]:
        sets = list(report.sets.order_by("position").values_list("dataset_version_id", flat=True))
        if sets == suite:
            return None if report_staleness(report).stale else report
    return None


def _report(log: Log, datasets: Sequence[str], *, with_campaign: bool) -> ReleaseReport | None:
    names = " + ".join(datasets)
    try:
        refs = resolve_refs(candidate=DEMO_CANDIDATE, dataset=list(datasets))
    except ReleaseError as exc:
        log(f"==> release report on {names}: skipped ({exc})")
        return None
    campaign = _demo_campaign(refs) if with_campaign else None
    try:
        report = _reusable(refs, campaign) or release_report_run_now(
            report=release_report_create(
                candidate=refs.candidate, baseline=refs.baseline,
                dataset_versions=list(refs.dataset_versions), campaign=campaign, enqueue=False,
            )
        )  # fmt: skip
    except Exception as exc:  # the demo goes on; the report row (if any) says why
        log(f"==> release report on {names}: not built ({type(exc).__name__}: {exc})")
        return None
    log(f"==> release report #{report.pk}: {report.candidate.ref} vs {report.baseline.ref} on "
        f"{names}" + (f" with campaign #{campaign.pk}" if campaign is not None else "")
        + f": {report.verdict} — /releases/reports/{report.pk}/")  # fmt: skip
    payload = release_report_payload(report)
    crowd = payload.gate_of_kind("crowd") if payload is not None else None
    if crowd is not None:
        log(f"    crowd gate ({crowd.status}): {crowd.text}")
    return report


def after_start(log: Log) -> None:
    _report(log, [DEMO_SET], with_campaign=False)
    suite = _report(log, SUITE, with_campaign=True)
    leaderboard_refresh(force=True)
    if suite is not None:
        log(f"    the leaderboard (home page) shows report #{suite.pk}'s verdict")
