"""Read-side of releases: stored leaderboard rows, reports, decisions (query shapes chosen here)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from evalsite.datasets.models import DatasetVersion
from evalsite.releases.errors import ReportNotFound
from evalsite.releases.models import (
    GateConfig,
    LeaderboardRow,
    LeaderboardState,
    ReleaseDecision,
    ReleaseGate,
    ReleaseReport,
    ReportStatus,
)
from models.models import ModelVersion
from pipelines.metrics.registry import PRIMARY, label, leaderboard_metrics, names
from pipelines.payloads.release_report import ReleaseReportPayload

#: Sortable leaderboard columns (the registry's leaderboard metrics first); for LOWER_FIRST lower
#: is better (ascending is "best first").
SORT_COLUMNS = (
    *names(leaderboard_metrics()), "rank", "latency_p50", "latency_p99", "gated_no_subject",
    "gated_subject", "worst_group_iou", "fairness_gap", "version", "family", "finished_at",
)  # fmt: skip
LOWER_FIRST = frozenset(
    {m.name for m in leaderboard_metrics() if m.lower_is_better}
    | {"rank", "latency_p50", "latency_p99", "gated_subject"}
)
HISTORY_ROWS = 200


def leaderboard_sets() -> list[DatasetVersion]:
    """Set versions that have leaderboard rows, newest first."""
    ids = LeaderboardRow.objects.values_list("dataset_version_id", flat=True).distinct()
    return list(
        DatasetVersion.objects.filter(pk__in=list(ids))
        .select_related("dataset")
        .order_by("dataset__name", "-created_at")
    )


def leaderboard_rows(
    *, dataset_version: DatasetVersion, family: str = "", runtime: str = "", sort: str = "iou",
    descending: bool | None = None,
) -> list[LeaderboardRow]:  # fmt: skip
    from django.db.models import F

    key = sort if sort in SORT_COLUMNS else "iou"
    desc = (key not in LOWER_FIRST and key not in ("version", "family")) if descending is None \
        else descending  # fmt: skip
    qs = LeaderboardRow.objects.filter(dataset_version=dataset_version)
    if family:
        qs = qs.filter(family=family)
    if runtime:
        qs = qs.filter(runtime=runtime)
    order = F(key).desc(nulls_last=True) if desc else F(key).asc(nulls_last=True)
    return list(qs.order_by(order, "family", "version"))


#: The sort option that orders by the family's metric that best predicts people.
PEOPLE_SORT = "people"


def people_sort_metric(family: str) -> dict[str, Any] | None:
    """The stored choice of the leaderboard metric that best predicts people for `family`
    (None without a family, or when none of its campaigns has a decided rated item)."""
    if not family:
        return None
    state = LeaderboardState.objects.filter(key="default").values_list("people_metrics", flat=True)
    stored = state.first() or {}
    found = stored.get(family)
    return found if isinstance(found, dict) else None


def leaderboard_filters(dataset_version: DatasetVersion) -> dict[str, list[str]]:
    qs = LeaderboardRow.objects.filter(dataset_version=dataset_version)
    return {
        "families": sorted(set(qs.values_list("family", flat=True))),
        "runtimes": sorted(set(qs.values_list("runtime", flat=True))),
    }


def leaderboard_plot(rows: list[LeaderboardRow]) -> dict[str, Any]:
    """The primary metric by version over time with its stored 95 % intervals, one line per
    family (plotly figure dict, drawn by static JS)."""
    what = label(PRIMARY)
    traces: dict[str, dict[str, list[Any]]] = {}
    for row in sorted(rows, key=lambda r: r.version_created_at):
        value = getattr(row, PRIMARY)
        if value is None:
            continue
        t = traces.setdefault(row.family, {"x": [], "y": [], "text": [], "up": [], "down": []})
        t["x"].append(row.version_created_at.isoformat())
        t["y"].append(round(value, 4))
        t["text"].append(row.version)
        low, high = ((row.intervals or {}).get("metrics") or {}).get(PRIMARY) or (value, value)
        t["up"].append(round(high - value, 4))
        t["down"].append(round(value - low, 4))
    return {
        "data": [{"type": "scatter", "mode": "lines+markers+text", "name": fam,
                  "textposition": "top center", "x": t["x"], "y": t["y"], "text": t["text"],
                  "error_y": {"type": "data", "symmetric": False, "array": t["up"],
                              "arrayminus": t["down"]}}
                 for fam, t in traces.items()],
        # plotly.js 3 draws only { text } axis titles (a bare string is dropped).
        "layout": {"height": 280, "margin": {"l": 55, "r": 10, "t": 30, "b": 45},
                   "title": {"text": f"{what} by version over time (95 % interval over images)",
                             "font": {"size": 13}},
                   "xaxis": {"title": {"text": "version registered"}},
                   "yaxis": {"title": {"text": f"{what} (mean over images)"}}},
    }  # fmt: skip


def leaderboard_state() -> LeaderboardState | None:
    return LeaderboardState.objects.filter(key="default").first()


def report_queryset() -> QuerySet[ReleaseReport]:
    return ReleaseReport.objects.select_related(
        "candidate__family", "baseline__family", "dataset_version__dataset", "created_by",
        "campaign",
    )  # fmt: skip


def report_get(pk: int) -> ReleaseReport:
    report = report_queryset().filter(pk=pk).first()
    if report is None:
        raise ReportNotFound(f"No release report #{pk}.")
    return report


def gate_get(pk: int) -> ReleaseGate:
    """The release gate with its candidate and report, or ReportNotFound."""
    gate = (
        ReleaseGate.objects.select_related("candidate__family", "report__baseline__family")
        .filter(pk=pk)
        .first()
    )
    if gate is None:
        raise ReportNotFound(f"No release gate #{pk}.")
    return gate


def report_list(*, limit: int = 100) -> list[ReleaseReport]:
    return list(report_queryset()[:limit])


def report_decision(report: ReleaseReport) -> ReleaseDecision | None:
    """The decision of a report (one per report; older duplicates are history only)."""
    return (
        report.decisions.filter(duplicate_before_unique=False)
        .select_related("decided_by", "alias_move__to_version", "alias_move__from_version")
        .first()
    )


def report_staleness(report: ReleaseReport, now: Any = None) -> Any:
    """Whether the report's recorded inputs moved on (`now`: an `EvidenceNow` shared by many)."""
    from evalsite.releases.services.evidence import report_staleness as staleness

    return staleness(report, now)


def evidence_now(reports: list[ReleaseReport]) -> Any:
    """The current evidence for many reports at once (three queries)."""
    from evalsite.releases.services.evidence import EvidenceNow

    return EvidenceNow().prefetch(reports)


def report_list_with_state(*, limit: int = 100) -> list[ReleaseReport]:
    """Reports with `staleness` and `decision` attached for the list page (read-only)."""
    reports = list(report_queryset().prefetch_related("sets__dataset_version__dataset")[:limit])
    decided = {
        d.report_id: d
        for d in ReleaseDecision.objects.filter(
            report__in=reports, duplicate_before_unique=False
        ).select_related("decided_by")
    }
    now = evidence_now(reports)
    for r in reports:
        r.staleness = report_staleness(r, now)  # type: ignore[attr-defined]
        r.decision = decided.get(r.pk)  # type: ignore[attr-defined]
    return reports


def decision_dict(decision: ReleaseDecision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    return {
        "id": decision.pk, "decision": decision.decision, "reason": decision.reason,
        "override": decision.override or None, "verdict": decision.verdict or None,
        "inputs": decision.inputs or {},
        "decided_by": decision.decided_by.username if decision.decided_by else None,
        "decided_at": decision.decided_at.isoformat(),
        "production_moved_to": (decision.alias_move.to_version.ref
                                if decision.alias_move_id and decision.alias_move else None),
    }  # fmt: skip


def release_report_payload(report: ReleaseReport) -> ReleaseReportPayload | None:
    """The stored report through its contract; None before it is built. Raises
    `pipelines.payloads.PayloadError` for a stored report this code cannot read."""
    return ReleaseReportPayload.from_dict(report.payload) if report.payload else None


def report_json(report: ReleaseReport, staleness: Any = None) -> dict[str, Any] | None:
    """The report JSON as read now: the stored payload plus its id, recorded inputs, whether
    those inputs moved on (`stale`, `stale_reasons`) and its decision. None before it is built."""
    if not report.payload:
        return None
    return {
        **report.payload,
        "id": report.pk,
        "inputs": report.inputs or {},
        **(staleness or report_staleness(report)).as_dict(),
        "decision": decision_dict(report_decision(report)),
    }


def newest_finished_report() -> ReleaseReport | None:
    return report_queryset().filter(status=ReportStatus.DONE).first()


def leaderboard_banner() -> dict[str, Any] | None:
    """The newest finished report with its decision (and override) and staleness: the banner
    says what was decided, not only the verdict the gates suggested."""
    report = newest_finished_report()
    if report is None:
        return None
    return {
        "report": report,
        "decision": report_decision(report),
        "staleness": report_staleness(report),
    }


def newest_reports_by_pair(dataset_version: DatasetVersion) -> dict[int, ReleaseReport]:
    """Newest finished report per candidate version on a set version (leaderboard links)."""
    out: dict[int, ReleaseReport] = {}
    for report in report_queryset().filter(
        dataset_version=dataset_version, status=ReportStatus.DONE
    ):
        out.setdefault(report.candidate_id, report)
    return out


def report_decisions(report: ReleaseReport) -> QuerySet[ReleaseDecision]:
    return report.decisions.select_related("decided_by", "alias_move__to_version")


def decisions_for_version(version: ModelVersion) -> QuerySet[ReleaseDecision]:
    """Decisions on reports where the version was the candidate (model version page)."""
    return ReleaseDecision.objects.filter(report__candidate=version).select_related(
        "decided_by", "report__baseline", "report__dataset_version__dataset"
    )


def release_history() -> QuerySet[ReleaseDecision]:
    return ReleaseDecision.objects.select_related(
        "decided_by", "report__candidate__family", "report__baseline", "report__baseline__family",
        "report__dataset_version__dataset", "alias_move__from_version", "alias_move__to_version",
    )[:HISTORY_ROWS]  # fmt: skip


def gate_configs() -> QuerySet[GateConfig]:
    return GateConfig.objects.select_related("family", "updated_by").order_by("family__name")
