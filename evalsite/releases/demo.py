"""`make demo` step of the release app: a release report for the newest candidate vs production
on `pascal-s-demo`, reachable from the leaderboard (home page).

Runs after the eval app's step has waited for the demo runs and the ratings app opened its
campaign (apps run in INSTALLED_APPS order). The candidate is whatever `subject-lift:candidate`
points to (resolved, never a hard-coded version). Idempotent: a finished report over the same two
runs is reused. Built in this process (the same service the report job calls), so the demo ends
with a verdict even before anyone rates.
"""

from __future__ import annotations

from collections.abc import Callable

from evalsite.releases.errors import ReleaseError
from evalsite.releases.models import ReleaseReport, ReportStatus
from evalsite.releases.services.leaderboard import leaderboard_refresh
from evalsite.releases.services.refs import resolve_refs
from evalsite.releases.services.reports import (
    primary_run_of,
    release_report_create,
    release_report_run_now,
)

Log = Callable[[str], object]
DEMO_SET = "pascal-s-demo"
DEMO_CANDIDATE = "subject-lift:candidate"


def after_start(log: Log) -> None:
    try:
        refs = resolve_refs(candidate=DEMO_CANDIDATE, dataset=DEMO_SET)
    except ReleaseError as exc:
        log(f"==> release report: skipped ({exc})")
        return
    runs = [primary_run_of(model_version=v, dataset_version=refs.dataset_version)
            for v in (refs.candidate, refs.baseline)]  # fmt: skip
    if None in runs:
        log(f"==> release report: {refs.candidate.ref} or {refs.baseline.ref} has no finished "
            f"run on {refs.dataset_version.spec}; skipped")  # fmt: skip
        leaderboard_refresh()
        return
    existing = ReleaseReport.objects.filter(
        candidate_run=runs[0], baseline_run=runs[1], status=ReportStatus.DONE
    ).first()
    try:
        report = existing or release_report_run_now(report=release_report_create(
            candidate=refs.candidate, baseline=refs.baseline,
            dataset_versions=[refs.dataset_version], enqueue=False,
        ))  # fmt: skip
    except Exception as exc:  # the demo goes on; the report row says why
        log(f"==> release report: failed ({type(exc).__name__}: {exc})")
        return
    leaderboard_refresh(force=True)
    log(f"==> release report #{report.pk}: {report.candidate.ref} vs {report.baseline.ref} on "
        f"{refs.dataset_version.spec}: {report.verdict} — /releases/reports/{report.pk}/ "
        "(linked from the leaderboard on the home page)")  # fmt: skip
