"""The evidence a release report read, and whether it has moved on since (staleness).

A report records, when its job builds it, exactly what it read: per set version of its suite the
two runs with their output digests, the attribute revision used (and the newest one then), the
campaign snapshot generation, the gate settings. A report is stale at read time when a newer
primary run exists for either side on any of its sets, a newer attribute revision exists for one
of its sets, or its campaign's snapshot generation moved (ratings arrived or were excluded).
Reading never writes: the comparison is computed per request from a few indexed queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evalsite.evals.selectors import primary_run, primary_run_ids
from evalsite.releases.models import ReleaseReport, ReportStatus
from evalsite.releases.services.gather import newest_revision, revision_of


def campaign_generation(campaign_id: int | None) -> int | None:
    """The campaign's snapshot generation now (0 before any snapshot), None without a campaign."""
    if campaign_id is None:
        return None
    from ratings.selectors import snapshot_generations

    return snapshot_generations(campaign_ids=[campaign_id])[campaign_id]


def report_evidence(*, report: ReleaseReport, generation: int | None) -> dict[str, Any]:
    """What the report reads (recorded with its payload). `generation` is read before the votes
    are gathered, so a rating that lands meanwhile makes the report stale, never silently fresh."""
    sets = []
    for rs in report.sets.select_related(
        "dataset_version", "candidate_run", "baseline_run"
    ).order_by("position"):
        used = revision_of(rs.candidate_run)
        newest = newest_revision(rs.dataset_version_id)
        sets.append({
            "dataset": rs.dataset_version.spec, "dataset_version": rs.dataset_version_id,
            "runs": {"candidate": rs.candidate_run_id, "baseline": rs.baseline_run_id},
            "output_digests": {"candidate": rs.candidate_run.output_digest or None,
                               "baseline": rs.baseline_run.output_digest or None},
            "attribute_revision": used.pk if used else None,
            "attribute_revision_number": used.number if used else None,
            "newest_attribute_revision": newest.pk if newest else None,
        })  # fmt: skip
    return {
        "sets": sets,
        "campaign": report.campaign_id,
        "campaign_generation": generation,
        "settings": dict(report.settings),
    }


@dataclass(frozen=True)
class Staleness:
    stale: bool
    reasons: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"stale": self.stale, "stale_reasons": list(self.reasons)}


FRESH = Staleness(False, [])


class EvidenceNow:
    """What the database says now (primary runs, newest attribute revisions, snapshot
    generations), looked up once per key; `prefetch` reads them for many reports in three
    queries (the report list)."""

    def __init__(self) -> None:
        self.runs: dict[tuple[int, int], int | None] = {}
        self.revisions: dict[int, tuple[int, int] | None] = {}
        self.generations: dict[int, int | None] = {}

    def prefetch(self, reports: Sequence[ReleaseReport]) -> EvidenceNow:
        from evalsite.datasets.models import AttributeRevision
        from ratings.selectors import snapshot_generations

        versions, sets, campaigns = set(), set(), set()
        for r in reports:
            inputs = r.inputs or {}
            versions |= {r.candidate_id, r.baseline_id}
            sets |= {s["dataset_version"] for s in inputs.get("sets") or []}
            if inputs.get("campaign") is not None:
                campaigns.add(inputs["campaign"])
        if not sets:
            return self
        for mv in versions:  # absent = no primary run
            for dv in sets:
                self.runs.setdefault((mv, dv), None)
        self.runs.update(primary_run_ids(model_version_ids=versions, dataset_version_ids=sets))
        for dv in sets:
            self.revisions.setdefault(dv, None)
        revs = AttributeRevision.objects.filter(version__in=sets).order_by("-number")
        for pk, dv, number in revs.values_list("pk", "version_id", "number"):
            if self.revisions.get(dv) is None:
                self.revisions[dv] = (pk, number)
        self.generations.update(snapshot_generations(campaign_ids=campaigns))
        return self

    def primary_run(self, version: Any, dv_id: int) -> int | None:
        key = (version.pk, dv_id)
        if key not in self.runs:
            run = primary_run(model_version=version, dataset_version=dv_id)
            self.runs[key] = run.pk if run else None
        return self.runs[key]

    def newest_revision(self, dv_id: int) -> tuple[int, int] | None:
        if dv_id not in self.revisions:
            rev = newest_revision(dv_id)
            self.revisions[dv_id] = (rev.pk, rev.number) if rev else None
        return self.revisions[dv_id]

    def generation(self, campaign_id: int) -> int | None:
        if campaign_id not in self.generations:
            self.generations[campaign_id] = campaign_generation(campaign_id)
        return self.generations[campaign_id]


def report_staleness(report: ReleaseReport, now: EvidenceNow | None = None) -> Staleness:
    """Selector: has the evidence of a finished report moved on? (reasons say what moved)."""
    if report.status != ReportStatus.DONE:
        return FRESH
    inputs = report.inputs or {}
    if not inputs.get("sets"):
        return Staleness(True, ["built before reports recorded their evidence; rebuild it"])
    now = now or EvidenceNow()
    reasons: list[str] = []
    sides = (("candidate", report.candidate), ("baseline", report.baseline))
    for recorded in inputs["sets"]:
        dv_id = recorded["dataset_version"]
        for side, version in sides:
            run = now.primary_run(version, dv_id)
            if run is not None and run != recorded["runs"][side]:
                reasons.append(
                    f"{side} {version.ref} has a newer run #{run} on {recorded['dataset']} "
                    f"(the report read #{recorded['runs'][side]})"
                )
        newest = now.newest_revision(dv_id)
        if newest is not None and newest[0] != recorded.get("newest_attribute_revision"):
            reasons.append(f"{recorded['dataset']} has a newer attribute revision (r{newest[1]})")
    if inputs.get("campaign") is not None:
        generation = now.generation(inputs["campaign"])
        if generation != inputs.get("campaign_generation"):
            reasons.append(
                f"campaign {inputs['campaign']} has new ratings (snapshot generation "
                f"{inputs.get('campaign_generation')} → {generation})"
            )
    return Staleness(bool(reasons), reasons)
