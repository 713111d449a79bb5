"""`EvalRun.summary`: a finished run's stored numbers.

The evals app builds `RunSummary` when it finalises a run (`evals.services.aggregate`) and stores
`to_dict()`; other apps read it only through `evalsite.evals.summary.run_summary(run)`.

Typed here: the metric means (gated = what ships, ungated), the item counts, how the confidence
gate behaved, and the latency per device and stage (read through the tail rule of
`pipelines.stats.latency`). The sections only the run page and its export show (slices, instance
matching, image sizes, failure reasons, workers, restarts, parity with another run) travel as
`sections`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.payloads import PayloadError, need, optional_float, version_of
from pipelines.stats.latency import stage_view, tail_name

RUN_SUMMARY_VERSION = 1
SUPPORTED = (1,)
WHAT = "run summary"
TYPED_KEYS = frozenset({"version", "metrics", "ungated_metrics", "counts", "gating", "latency"})


def _count(doc: Mapping[str, Any], key: str, what: str) -> int:
    value = need(doc, key, what=f"{WHAT} {what}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{WHAT} {what}.{key}: expected an integer, got {value!r}")
    return value


def _metrics(doc: Mapping[str, Any], key: str) -> dict[str, float | None]:
    values = need(doc, key, what=WHAT)
    if not isinstance(values, Mapping):
        raise PayloadError(f"{WHAT}: {key} must be an object")
    return {str(k): optional_float(v, what=f"{WHAT} {key}.{k}") for k, v in values.items()}


@dataclass(frozen=True)
class Counts:
    items: int
    ok: int
    failed: int
    gated: int

    def to_dict(self) -> dict[str, int]:
        return {"items": self.items, "ok": self.ok, "failed": self.failed, "gated": self.gated}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Counts:
        return cls(*(_count(doc, k, "counts") for k in ("items", "ok", "failed", "gated")))


@dataclass(frozen=True)
class Gating:
    """How the confidence gate behaved: on items without a subject (it should hide them) and on
    items with one (it should not)."""

    gated: int
    no_subject_items: int
    no_subject_gated: int
    subject_items: int
    subject_gated: int

    def to_dict(self) -> dict[str, int]:
        return {"gated": self.gated, "no_subject_items": self.no_subject_items,
                "no_subject_gated": self.no_subject_gated, "subject_items": self.subject_items,
                "subject_gated": self.subject_gated}  # fmt: skip

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Gating:
        keys = ("gated", "no_subject_items", "no_subject_gated", "subject_items", "subject_gated")
        return cls(*(_count(doc, k, "gating") for k in keys))

    @property
    def no_subject_rate(self) -> float | None:
        return self.no_subject_gated / self.no_subject_items if self.no_subject_items else None

    @property
    def subject_rate(self) -> float | None:
        return self.subject_gated / self.subject_items if self.subject_items else None


@dataclass(frozen=True)
class TotalLatency:
    """Whole-pipeline latency on one device through the tail rule: `tail` is "p99" from 100
    measurements, else "max", and `tail_ms` its value."""

    device: str
    n: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    mean: float | None
    tail: str
    tail_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Latency:
    """Per device: how many items were timed and each stage's statistics (ms) as stored."""

    warmup_excluded: int = 0
    devices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"warmup_excluded": self.warmup_excluded,
                "devices": {k: dict(v) for k, v in self.devices.items()}}  # fmt: skip

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Latency:
        devices = doc.get("devices") or {}
        for name, device in devices.items():
            need(device, "stages", what=f"{WHAT} latency of device {name!r}")
        return cls(int(doc.get("warmup_excluded") or 0), dict(devices))

    def tables(self) -> list[dict[str, Any]]:
        """One table per device: n, the tail statistic's name and a row per measured stage."""
        tables = []
        for device, d in self.devices.items():
            n = int(d.get("n") or 0)
            view = [{"stage": s, **stage_view(v, n)} for s, v in (d.get("stages") or {}).items()]
            tables.append({"device": device, "n": n, "tail": tail_name(n), "rows": view})
        return tables

    def total(self) -> TotalLatency | None:
        """The whole pipeline on the device with the most measurements; None when nothing
        was measured."""
        if not self.devices:
            return None
        name, best = max(self.devices.items(), key=lambda kv: kv[1].get("n", 0))
        total = (best.get("stages") or {}).get("total")
        if not total:
            return None
        return TotalLatency(device=name, **stage_view(total, best.get("n")))


@dataclass(frozen=True)
class RunSummary:
    version: int
    metrics: Mapping[str, float | None]
    ungated_metrics: Mapping[str, float | None]
    counts: Counts
    gating: Gating
    latency: Latency
    #: Page-only sections, JSON-ready (see the module docstring).
    sections: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.sections,
            "version": self.version,
            "metrics": dict(self.metrics),
            "ungated_metrics": dict(self.ungated_metrics),
            "counts": self.counts.to_dict(),
            "gating": self.gating.to_dict(),
            "latency": self.latency.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> RunSummary:
        return cls(
            version=version_of(doc, what=WHAT, supported=SUPPORTED),
            metrics=_metrics(doc, "metrics"),
            ungated_metrics=_metrics(doc, "ungated_metrics"),
            counts=Counts.from_dict(need(doc, "counts", what=WHAT)),
            gating=Gating.from_dict(need(doc, "gating", what=WHAT)),
            latency=Latency.from_dict(need(doc, "latency", what=WHAT)),
            sections={k: v for k, v in doc.items() if k not in TYPED_KEYS},
        )
