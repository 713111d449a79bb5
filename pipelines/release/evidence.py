"""Evidence that could be biased: a set's items a version declares it was trained, tuned or
selected on, the sentence that names them, and the rule that keeps such a set from passing a gate.

Why a gate cannot pass on them: numbers on images a version was fitted or chosen on favour that
version (its checkpoint or interpolation weight won *on these images*), so a quality gate read on
them is not evidence that it generalises. The rule is pure so a report over several sets can apply
it per set: `apply_biased_evidence` for one set's gates, `report_with_biased_evidence` for a whole
one-set report payload.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pipelines.spec.declared import ROLES, declared_data

from .gates import EXIT_CODES, FAIL, INSUFFICIENT, PASS, Gate, verdict_of

#: What each role did with the images, for the sentence ("used to select subject-lift 1.2.0").
ROLE_VERBS = {"trained": "train", "tuned": "tune", "selected": "select"}
EVIDENCE_GATE = "unbiased evidence"
#: Gates read from per-image quality numbers of the set: the ones biased evidence invalidates.
QUALITY_KINDS = frozenset({"metric"})


@dataclass(frozen=True)
class RoleOverlap:
    """The items of one set that one version declares for one role."""

    role: str  # "trained" | "tuned" | "selected"
    version: str  # "family:version"
    stems: tuple[str, ...]  # sorted
    total: int  # items in the set

    @property
    def items(self) -> int:
        return len(self.stems)

    @property
    def text(self) -> str:
        return biased_evidence_text(self.as_entry())

    def as_entry(self) -> dict[str, Any]:
        """The contract's entry (reports.md: role, version, items), plus its total and sentence."""
        return {"role": self.role, "version": self.version, "items": self.items, "of": self.total}

    def as_dict(self) -> dict[str, Any]:
        entry = self.as_entry()
        return {**entry, "text": biased_evidence_text(entry)}


def overlap_by_role(
    *, version: str, spec: Mapping[str, Any] | None, items: Iterable[tuple[str, str]]
) -> list[RoleOverlap]:
    """One entry per role whose declared images include some of ``items`` ((stem, image sha256)),
    in role order; a version that declares nothing, or nothing in this set, gives []."""
    declared = declared_data(spec)
    pairs = list(items)
    out = []
    for role in ROLES:
        digests = declared[role]
        stems = sorted(stem for stem, sha in pairs if sha in digests) if digests else []
        if stems:
            out.append(RoleOverlap(role, version, tuple(stems), len(pairs)))
    return out


def _words(version: str) -> str:
    family, _, name = version.partition(":")
    return f"{family} {name}" if name else version


def biased_evidence_text(entry: Mapping[str, Any]) -> str:
    """ "14 of 30 items were used to select subject-lift 1.2.0 (selected); numbers on this set
    favour it" — from a contract entry (``of`` optional)."""
    n = int(entry["items"])
    of = f" of {entry['of']}" if entry.get("of") is not None else ""
    verb = ROLE_VERBS.get(entry["role"], entry["role"])
    return (
        f"{n}{of} item{'s' if n != 1 or of else ''} {'was' if n == 1 else 'were'} used to {verb} "
        f"{_words(entry['version'])} ({entry['role']}); numbers on this set favour it"
    )


def apply_biased_evidence(
    gates: Sequence[Gate],
    biased: Sequence[Mapping[str, Any]],
    *,
    candidate: str,
    baseline: str,
    dataset: str | None = None,
) -> list[Gate]:
    """The gates of one set after the biased-evidence rule (pure; nothing else changes).

    With overlap on the set, a quality gate cannot pass: `pass` becomes `insufficient` (it lacks
    unbiased evidence). A `fail` stands when only the candidate is favoured (the bias could only
    have helped it); when the baseline is favoured the failure is not evidence either and becomes
    `insufficient`. One `evidence` gate names every overlap. ``dataset``: the set these entries
    are about; gates carrying another `dataset` (a report over several sets) are left alone.
    """
    if not biased:
        return list(gates)
    versions = {e["version"] for e in biased}
    baseline_favoured = baseline in versions
    why = "biased evidence: " + "; ".join(biased_evidence_text(e) for e in biased)
    out: list[Gate] = []
    for gate in gates:
        gate_set = getattr(gate, "dataset", None)
        if gate.kind not in QUALITY_KINDS or (dataset and gate_set and gate_set != dataset):
            out.append(gate)
            continue
        if gate.status == PASS or (gate.status == FAIL and baseline_favoured):
            out.append(replace(gate, status=INSUFFICIENT, text=f"{why}. {gate.text}"))
        else:
            out.append(replace(gate, text=f"{why}. {gate.text}"))
    out.append(
        Gate(
            name=EVIDENCE_GATE,
            kind="evidence",
            status=INSUFFICIENT,
            text=f"{why}. Judge the release on a set neither version was trained, tuned or "
            "selected on.",
            dataset=dataset,
        )
    )
    return out


def report_with_biased_evidence(
    payload: Mapping[str, Any], biased: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """A report payload with ``biased_evidence`` set, its gates ruled, verdict redone.

    An entry naming a ``dataset`` (a report over several sets) rules only that set's gates;
    entries without one rule every gate (a one-set report)."""
    gates = [Gate(**g) for g in payload["gates"]]
    by_set: dict[str | None, list[Mapping[str, Any]]] = {}
    for entry in biased:
        by_set.setdefault(entry.get("dataset"), []).append(entry)
    for dataset, entries in by_set.items():
        gates = apply_biased_evidence(
            gates,
            entries,
            candidate=payload["candidate"],
            baseline=payload["baseline"],
            dataset=dataset,
        )
    verdict = verdict_of(gates)
    return {
        **payload,
        "biased_evidence": [dict(e) for e in biased],
        "gates": [g.as_dict() for g in gates],
        "verdict": verdict,
        "exit_code": EXIT_CODES[verdict],
    }
