"""`ReleaseReport.payload`: a release report as stored (the release report JSON of the report
contracts, less what is added at read time: id, inputs, staleness, decision).

The releases app validates the document `pipelines.release.report.build_suite_report` computes
through `ReleaseReportPayload.from_dict` and stores `to_dict()`; the report page, the API, the
gate API, the CLI and the demo read it through `evalsite.releases.selectors.release_report_payload`.

Typed here: the header (sides, sets, runs), the verdict with its exit code, and every gate
(`pipelines.release.gates.Gate`). The sections the report page and exports render as stored
(metrics, fairness, latency, crowd, gating, gallery, people metrics, biased evidence, …) travel
as `sections`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from pipelines.payloads import PayloadError, need, version_of
from pipelines.release.gates import Gate

RELEASE_REPORT_VERSION = 1
SUPPORTED = (1,)
WHAT = "release report"
VERDICTS = {"pass": 0, "fail": 3, "insufficient": 4}
GATE_KEYS = frozenset(f.name for f in fields(Gate))
TYPED_KEYS = frozenset(
    {"version", "candidate", "baseline", "dataset", "datasets", "runs", "verdict", "exit_code",
     "gates"}
)  # fmt: skip


def _gate(doc: Mapping[str, Any]) -> Gate:
    name = str(need(doc, "name", what=f"{WHAT} gate"))
    what = f"{WHAT} gate {name!r}"
    for key in ("kind", "status", "text"):
        need(doc, key, what=what)
    if doc["status"] not in VERDICTS:
        raise PayloadError(f"{what}: unknown status {doc['status']!r}")
    return Gate(**{k: v for k, v in doc.items() if k in GATE_KEYS})


@dataclass(frozen=True)
class ReleaseReportPayload:
    version: int
    candidate: str
    baseline: str
    dataset: str
    datasets: tuple[str, ...]
    runs: Mapping[str, int]
    verdict: str
    exit_code: int
    gates: tuple[Gate, ...]
    #: Page-only sections, JSON-ready (see the module docstring).
    sections: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.sections,
            "version": self.version,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "dataset": self.dataset,
            "datasets": list(self.datasets),
            "runs": dict(self.runs),
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "gates": [g.as_dict() for g in self.gates],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ReleaseReportPayload:
        version = version_of(doc, what=WHAT, supported=SUPPORTED)
        verdict = str(need(doc, "verdict", what=WHAT))
        if verdict not in VERDICTS:
            raise PayloadError(f"{WHAT}: unknown verdict {verdict!r}")
        dataset = str(need(doc, "dataset", what=WHAT))
        runs = need(doc, "runs", what=WHAT)
        return cls(
            version=version,
            candidate=str(need(doc, "candidate", what=WHAT)),
            baseline=str(need(doc, "baseline", what=WHAT)),
            dataset=dataset,
            # reports from before suites covered one set
            datasets=tuple(str(d) for d in doc.get("datasets") or [dataset]),
            runs={str(k): int(v) for k, v in runs.items()},
            verdict=verdict,
            exit_code=int(doc.get("exit_code", VERDICTS[verdict])),
            gates=tuple(_gate(g) for g in need(doc, "gates", what=WHAT)),
            sections={k: v for k, v in doc.items() if k not in TYPED_KEYS},
        )

    def gate_of_kind(self, kind: str) -> Gate | None:
        return next((g for g in self.gates if g.kind == kind), None)
