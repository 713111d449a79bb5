"""`FairnessReport.data`: a run's stored fairness report (the fairness JSON of the report
contracts), and its per-metric summary; `PairedFairness`: two runs' per-group paired deltas,
stored with their comparison (see the class).

The fairness app builds `FairnessPayload` (`evalsite.fairness.services`) and stores `to_dict()`
in `data`, and `summary.to_dict()` in the row's `summary` column (the same numbers, so the
leaderboard need not load whole reports). Other apps read only `RunFairness`, through
`evalsite.fairness.selectors.fairness_summaries`.

Typed here: the header, the settings, the flags and the summary (per metric, the worst group by
mean and the largest harmful gap). The per-group table (`groups`) and the sections only the
fairness page renders (overall means, skipped items, contrast strata, crowd fairness, …) travel
as mappings: the fairness page and its export show them as stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.fairness.grouping import display_group
from pipelines.payloads import PayloadError, integer, need, optional_float, version_of

FAIRNESS_PAYLOAD_VERSION = 1
SUPPORTED = (1,)
WHAT = "fairness report"
TYPED_KEYS = frozenset(
    {"version", "run", "dataset", "synthetic_labels", "settings", "groups", "flags", "summary"}
)


def _pair(value: Any, what: str) -> tuple[float | None, float | None]:
    if not isinstance(value, Sequence) or len(value) != 2:
        raise PayloadError(f"{WHAT} {what}: expected [low, high], got {value!r}")
    return optional_float(value[0], what=what), optional_float(value[1], what=what)


@dataclass(frozen=True)
class _GroupEstimate:
    """A group of one attribute and a number about it with its interval, stored under the
    keys its subclass names (`value`, `interval`)."""

    attribute: str
    group: str

    @property
    def name(self) -> str:
        """The group in words ("Monk 8-10")."""
        return display_group(self.attribute, self.group)

    def _dict(self, value: str, interval: str) -> dict[str, Any]:
        return {"attribute": self.attribute, "group": self.group,
                value: getattr(self, value), interval: list(getattr(self, interval))}  # fmt: skip

    @staticmethod
    def _read(doc: Mapping[str, Any], what: str, value: str, interval: str) -> dict[str, Any]:
        return {
            "attribute": str(need(doc, "attribute", what=what)),
            "group": str(need(doc, "group", what=what)),
            value: optional_float(need(doc, value, what=what), what=what),
            interval: _pair(need(doc, interval, what=what), what),
        }


@dataclass(frozen=True)
class WorstGroup(_GroupEstimate):
    mean: float | None
    ci: tuple[float | None, float | None]

    def to_dict(self) -> dict[str, Any]:
        return self._dict("mean", "ci")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], metric: str) -> WorstGroup:
        return cls(**cls._read(doc, f"{WHAT} summary of {metric!r} worst_group", "mean", "ci"))


@dataclass(frozen=True)
class LargestGap(_GroupEstimate):
    gap: float | None
    gap_ci: tuple[float | None, float | None]
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return {**self._dict("gap", "gap_ci"), "flagged": self.flagged}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], metric: str) -> LargestGap:
        what = f"{WHAT} summary of {metric!r} largest_gap"
        return cls(**cls._read(doc, what, "gap", "gap_ci"), flagged=bool(doc.get("flagged", False)))


@dataclass(frozen=True)
class MetricSummary:
    """One metric: the worst eligible group by mean and the largest harmful gap (None when no
    group was large enough to judge)."""

    worst_group: WorstGroup | None
    largest_gap: LargestGap | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "worst_group": self.worst_group.to_dict() if self.worst_group else None,
            "largest_gap": self.largest_gap.to_dict() if self.largest_gap else None,
        }


@dataclass(frozen=True)
class FairnessSummary:
    metrics: Mapping[str, MetricSummary] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {name: s.to_dict() for name, s in self.metrics.items()}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> FairnessSummary:
        if not isinstance(doc, Mapping):
            raise PayloadError(f"{WHAT} summary: expected a JSON object")
        out = {}
        for name, entry in doc.items():
            what = f"{WHAT} summary of {name!r}"
            worst, largest = (
                need(entry, "worst_group", what=what),
                need(entry, "largest_gap", what=what),
            )
            out[str(name)] = MetricSummary(
                WorstGroup.from_dict(worst, name) if worst is not None else None,
                LargestGap.from_dict(largest, name) if largest is not None else None,
            )
        return cls(out)

    def metric(self, metric: str) -> MetricSummary:
        return self.metrics.get(metric) or MetricSummary(None, None)


@dataclass(frozen=True)
class RunFairness:
    """What the leaderboard shows of a run's default fairness report."""

    summary: FairnessSummary
    flags: int
    synthetic_labels: bool


@dataclass(frozen=True)
class FairnessPayload:
    version: int
    run: int
    dataset: str
    synthetic_labels: bool
    settings: Mapping[str, Any]
    groups: tuple[Mapping[str, Any], ...]
    flags: tuple[Mapping[str, Any], ...]
    summary: FairnessSummary
    #: Page-only sections, JSON-ready (see the module docstring).
    sections: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.sections,
            "version": self.version,
            "run": self.run,
            "dataset": self.dataset,
            "synthetic_labels": self.synthetic_labels,
            "settings": dict(self.settings),
            "groups": [dict(g) for g in self.groups],
            "flags": [dict(f) for f in self.flags],
            "summary": self.summary.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> FairnessPayload:
        version = version_of(doc, what=WHAT, supported=SUPPORTED)
        run = need(doc, "run", what=WHAT)
        if isinstance(run, bool) or not isinstance(run, int):
            raise PayloadError(f"{WHAT}: run must be a run id, got {run!r}")
        flags = tuple(dict(f) for f in need(doc, "flags", what=WHAT))
        for flag in flags:
            for key in ("attribute", "group", "metric", "gap", "text"):
                need(flag, key, what=f"{WHAT} flag")
        return cls(
            version=version,
            run=run,
            dataset=str(need(doc, "dataset", what=WHAT)),
            synthetic_labels=bool(need(doc, "synthetic_labels", what=WHAT)),
            settings=dict(need(doc, "settings", what=WHAT)),
            groups=tuple(dict(g) for g in need(doc, "groups", what=WHAT)),
            flags=flags,
            summary=FairnessSummary.from_dict(need(doc, "summary", what=WHAT)),
            sections={k: v for k, v in doc.items() if k not in TYPED_KEYS},
        )


PAIRED_FAIRNESS_VERSION = 1
PAIRED_WHAT = "paired fairness"
#: The keys of a group row the fairness compare page reads (`pipelines.fairness.
#: paired_attribute_deltas`); the per-metric cells travel as stored.
PAIRED_GROUP_KEYS = ("attribute", "group", "n", "too_small", "metrics")


@dataclass(frozen=True)
class PairedFairness:
    """Per-group paired deltas candidate - baseline of two runs on one set version: what the
    fairness compare page shows. The fairness app computes it
    (`evalsite.fairness.selectors.fairness_paired`), the evals app stores `to_dict()` with the
    runs' comparison (`RunComparison.payload["fairness"]`) and reads it back for that page
    through `evalsite.evals.selectors.run_comparison_fairness`.

    `message` says why there are no deltas (the set has no person attributes); the numbers are
    then empty. Rows stored before this class carried no version, and the message rows only
    ``{"message"}``: both read as version 1.
    """

    version: int
    baseline: int | None
    candidate: int | None
    n: int
    min_group_size: int
    attribute_revision: int | None
    synthetic_labels: bool
    #: `paired_attribute_deltas` rows, each with `PAIRED_GROUP_KEYS`.
    groups: tuple[Mapping[str, Any], ...]
    message: str = ""

    @classmethod
    def unavailable(cls, message: str, *, baseline: int, candidate: int) -> PairedFairness:
        return cls(PAIRED_FAIRNESS_VERSION, baseline, candidate, 0, 0, None, False, (), message)

    @property
    def available(self) -> bool:
        return not self.message

    @property
    def metrics(self) -> list[str]:
        """The metrics of the group rows, in their stored order."""
        return list(self.groups[0]["metrics"]) if self.groups else []

    def to_dict(self) -> dict[str, Any]:
        head = {"version": self.version, "baseline": self.baseline, "candidate": self.candidate}
        if self.message:
            return {**head, "message": self.message}
        return {
            **head,
            "n": self.n,
            "min_group_size": self.min_group_size,
            "attribute_revision": self.attribute_revision,
            "synthetic_labels": self.synthetic_labels,
            "groups": [dict(g) for g in self.groups],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PairedFairness:
        version = version_of(doc, what=PAIRED_WHAT, supported=(PAIRED_FAIRNESS_VERSION,))
        baseline, candidate = doc.get("baseline"), doc.get("candidate")
        runs = (
            None if baseline is None else integer(baseline, what=f"{PAIRED_WHAT}: baseline"),
            None if candidate is None else integer(candidate, what=f"{PAIRED_WHAT}: candidate"),
        )
        if "message" in doc:
            return cls(
                version, *runs, 0, 0, None, False, (), str(doc["message"]) or "no per-group deltas"
            )
        groups = tuple(dict(g) for g in need(doc, "groups", what=PAIRED_WHAT))
        for g in groups:
            for key in PAIRED_GROUP_KEYS:
                need(g, key, what=f"{PAIRED_WHAT} group")
        revision = need(doc, "attribute_revision", what=PAIRED_WHAT)
        return cls(
            version=version,
            baseline=runs[0],
            candidate=runs[1],
            n=int(need(doc, "n", what=PAIRED_WHAT)),
            min_group_size=int(need(doc, "min_group_size", what=PAIRED_WHAT)),
            attribute_revision=None if revision is None else int(revision),
            synthetic_labels=bool(need(doc, "synthetic_labels", what=PAIRED_WHAT)),
            groups=groups,
        )
