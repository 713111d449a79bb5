"""The evidence a release report read, and whether it has moved on since (staleness).

A report records, when its job builds it, exactly what it read: per set version of its suite the
two runs with their output digests, the attribute revision used (and the newest one then), the
campaign snapshot generation, the gate settings. A report is stale at read time when a newer
primary run exists for either side on any of its sets, a newer attribute revision exists for one
of its sets, or its campaign's snapshot generation moved (ratings arrived or were excluded).
Reading never writes: the comparison is computed per request from a few indexed queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evalsite.releases.models import ReleaseReport, ReportStatus
from evalsite.releases.services.gather import newest_revision, revision_of
from evalsite.releases.services.reports import primary_run_of


def campaign_generation(campaign_id: int | None) -> int | None:
    """The campaign's snapshot generation now (0 before any snapshot), None without a campaign."""
    if campaign_id is None:
        return None
    from ratings.models import CampaignSnapshot

    gen = (
        CampaignSnapshot.objects.filter(campaign_id=campaign_id)
        .values_list("generation", flat=True)
        .first()
    )
    return int(gen or 0)


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


def report_staleness(report: ReleaseReport) -> Staleness:
    """Selector: has the evidence of a finished report moved on? (reasons say what moved)."""
    if report.status != ReportStatus.DONE:
        return FRESH
    inputs = report.inputs or {}
    if not inputs.get("sets"):
        return Staleness(True, ["built before reports recorded their evidence; rebuild it"])
    reasons: list[str] = []
    sides = (("candidate", report.candidate), ("baseline", report.baseline))
    for recorded in inputs["sets"]:
        dv_id = recorded["dataset_version"]
        for side, version in sides:
            run = primary_run_of(model_version=version, dataset_version=dv_id)
            if run is not None and run.pk != recorded["runs"][side]:
                reasons.append(
                    f"{side} {version.ref} has a newer run #{run.pk} on {recorded['dataset']} "
                    f"(the report read #{recorded['runs'][side]})"
                )
        newest = newest_revision(dv_id)
        if newest is not None and newest.pk != recorded.get("newest_attribute_revision"):
            reasons.append(
                f"{recorded['dataset']} has a newer attribute revision (r{newest.number})"
            )
    if inputs.get("campaign") is not None:
        now = campaign_generation(inputs["campaign"])
        if now != inputs.get("campaign_generation"):
            reasons.append(
                f"campaign {inputs['campaign']} has new ratings (snapshot generation "
                f"{inputs.get('campaign_generation')} → {now})"
            )
    return Staleness(bool(reasons), reasons)
