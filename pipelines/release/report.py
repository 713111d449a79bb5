"""Assemble a release report (the JSON of docs/contracts/reports.md) from arrays.

The Django app pairs the two runs' per-image results by item, looks up attributes, latency
summaries and crowd votes, and calls `build_release_report`; everything it stores is returned here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from pipelines.fairness import attribute_labels, display_group, parse_tone_groups
from pipelines.metrics.registry import BY_NAME, label
from pipelines.metrics.registry import lower_is_better as registry_lower

from .crowd import CrowdVotes, crowd_section
from .deltas import paired_deltas
from .gates import (
    EXIT_CODES,
    INSUFFICIENT,
    Gate,
    GateSettings,
    apply_holm,
    evaluate_gates,
    verdict_of,
)
from .groups import GroupDelta, group_deltas_with_flags

GALLERY_SIZE = 6


@dataclass(frozen=True)
class ReleaseInputs:
    candidate: str
    baseline: str
    dataset: str
    runs: Mapping[str, int]
    items: list[dict[str, Any]]  # {"id", "stem"} in the order of every array below
    baseline_metrics: Mapping[str, ArrayLike]
    candidate_metrics: Mapping[str, ArrayLike]
    baseline_gated: ArrayLike
    candidate_gated: ArrayLike
    no_subject: ArrayLike
    # side -> pipelines.stats.latency.latency_stats keys (n, p50, p99 or None below 100 images,
    # max, tail, tail_ms) + run, runtime, device, source
    latency: Mapping[str, dict[str, Any]]
    postprocess: Mapping[str, dict[str, Any]]
    # Raw labels per item: "skin_tone" (Monk 1-10, unknown, not_applicable) and
    # "perceived_gender"; grouped with `tone_groups` (pipelines.fairness.grouping).
    attributes: Mapping[str, list[str]] | None = None
    tone_groups: str = "1-3,4-7,8-10"
    synthetic_labels: bool = False
    crowd: CrowdVotes | None = None
    dropped: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Instance metrics (pipelines.metrics.instances) over the paired items with instance masks
    # in both runs: their own sample, so their own seeded draw (empty: the set has none).
    instance_baseline: Mapping[str, ArrayLike] = field(default_factory=dict)
    instance_candidate: Mapping[str, ArrayLike] = field(default_factory=dict)


def config_differences(baseline: Mapping[str, Any], candidate: Mapping[str, Any]) -> list[str]:
    """Human-readable keys whose post-processing values differ (missing = "unset")."""
    out = []
    for key in sorted(set(baseline) | set(candidate)):
        b, c = baseline.get(key, "unset"), candidate.get(key, "unset")
        if b != c:
            out.append(f"{key}: baseline {b!r}, candidate {c!r}")
    return out


def _gating(gated: np.ndarray, no_subject: np.ndarray) -> dict[str, Any]:
    none, some = gated[no_subject], gated[~no_subject]
    return {
        "no_subject_items": int(none.size),
        "no_subject_gated": float(none.mean()) if none.size else None,
        "subject_items": int(some.size),
        "subject_gated": float(some.mean()) if some.size else None,
    }


def _gallery(inputs: ReleaseInputs, iou_b: np.ndarray, iou_c: np.ndarray) -> dict[str, Any]:
    delta = iou_c - iou_b
    order = np.argsort(delta, kind="stable")

    def row(i: int) -> dict[str, Any]:
        return {
            **inputs.items[i],
            "iou_baseline": float(iou_b[i]),
            "iou_candidate": float(iou_c[i]),
            "delta": float(delta[i]),
        }

    regressed = [row(int(i)) for i in order[:GALLERY_SIZE] if delta[i] < 0]
    improved = [row(int(i)) for i in order[::-1][:GALLERY_SIZE] if delta[i] > 0]
    disagreement = []
    if inputs.crowd is not None and len(inputs.crowd.items):
        index = {it["id"]: k for k, it in enumerate(inputs.items)}
        votes = inputs.crowd
        for item in np.unique(votes.items):
            k = index.get(item.item() if hasattr(item, "item") else item)
            if k is None:
                continue
            out = votes.outcome[votes.items == item]
            human = float((np.sum(out == 0) - np.sum(out == 1)) / len(out))
            d = float(delta[k])
            if -human * d > 0:
                disagreement.append(
                    {**row(k), "votes": len(out), "human": human, "divergence": -human * d}
                )
        disagreement.sort(key=lambda r: (-r["divergence"], r["stem"]))
    return {
        "regressed": regressed,
        "improved": improved,
        "disagreement": disagreement[:GALLERY_SIZE],
    }


@dataclass
class _Analysis:
    """The numbers of one set version of a report, before gates."""

    deltas: dict[str, Any]
    fairness: dict[str, Any]
    fairness_groups: dict[str, list[GroupDelta]] | None
    crowd: Any
    diffs: list[str]
    fair_b: np.ndarray
    fair_c: np.ndarray


def _analyse(inputs: ReleaseInputs, s: GateSettings) -> _Analysis:
    deltas = paired_deltas(
        inputs.baseline_metrics,
        inputs.candidate_metrics,
        margin=s.improvement_margin,
        rounds=s.rounds,
        seed=s.seed,
    )
    if inputs.instance_baseline:
        deltas = {
            **deltas,
            **paired_deltas(
                inputs.instance_baseline,
                inputs.instance_candidate,
                margin=s.improvement_margin,
                rounds=s.rounds,
                seed=s.seed,
            ),
        }
    metric = s.fairness_metric
    fair_b = np.asarray(inputs.baseline_metrics[metric], dtype=np.float64)
    fair_c = np.asarray(inputs.candidate_metrics[metric], dtype=np.float64)
    fairness_groups: dict[str, list[GroupDelta]] | None = None
    fairness: dict[str, Any] = {
        "available": False,
        "metric": metric,
        "dataset": inputs.dataset,
        "note": "not available: the set has no person attributes",
    }
    if inputs.attributes:
        fairness_groups = {}
        labels = attribute_labels(inputs.attributes["skin_tone"],
                                  inputs.attributes["perceived_gender"],
                                  parse_tone_groups(inputs.tone_groups))  # fmt: skip
        sections = {}
        for attribute, lab in labels.items():
            if all(x is None for x in lab):
                continue
            groups = group_deltas_with_flags(
                fair_b, fair_c, lab, metric=metric, min_group_size=s.min_group_size,
                alpha=0.05, margin=s.fairness_margin, lower_is_better=metric in registry_lower(),
                rounds=s.rounds, seed=s.seed)  # fmt: skip
            fairness_groups[attribute] = groups
            sections[attribute] = [g.as_dict() for g in groups]
        fairness = {
            "available": bool(sections),
            "metric": metric,
            "dataset": inputs.dataset,
            "synthetic_labels": inputs.synthetic_labels,
            "tone_groups": inputs.tone_groups,
            "min_group_size": s.min_group_size,
            "margin": s.fairness_margin,
            "attributes": sections,
            # groups that reached min_group_size per attribute: with 0, nothing was judged
            # there (no interval, no test), which is not the same as "no flags"
            "judged_groups": {
                a: sum(1 for g in gs if not g["too_small"]) for a, gs in sections.items()
            },
            "flags": [
                {
                    "attribute": a,
                    "group": g.group,
                    "metric": metric,
                    "delta": g.delta,
                    "delta_vs_rest": g.delta_vs_rest,
                    "text": f"{display_group(a, g.group)}: {label(metric)} delta "
                    f"{g.delta:+.3f}, {g.delta_vs_rest or 0:+.3f} against "
                    "the other images",
                }
                for a, gs in fairness_groups.items()
                for g in gs
                if g.flagged
            ],
        }
        if not sections:
            fairness["note"] = "not available: no item of the set shows a person"
            fairness_groups = None
    crowd = crowd_section(inputs.crowd, min_votes=s.min_votes, rounds=s.rounds, seed=s.seed)
    diffs = config_differences(
        inputs.postprocess.get("baseline") or {}, inputs.postprocess.get("candidate") or {}
    )
    return _Analysis(deltas, fairness, fairness_groups, crowd, diffs, fair_b, fair_c)


def build_release_report(inputs: ReleaseInputs, settings: GateSettings) -> dict[str, Any]:
    """The report of one set version (a suite of one)."""
    return build_suite_report([inputs], settings)


def _suite_gates(
    parts: Sequence[ReleaseInputs], analyses: list[_Analysis], s: GateSettings
) -> list[Gate]:
    """Metric and post-processing gates on every set; fairness on the sets with person
    attributes (on the first set, as "insufficient", when none has them); latency on the first
    set; crowd gates on the set the campaign rated (the first when there is no campaign). Holm
    runs once over the statistical gates of all sets."""
    fair = {i for i, a in enumerate(analyses) if a.fairness_groups is not None} or {0}
    crowd_at = next((i for i, p in enumerate(parts) if p.crowd is not None), 0)
    gates: list[Gate] = []
    for i, (part, a) in enumerate(zip(parts, analyses, strict=True)):
        own = replace(
            s,
            fairness_attributes=s.fairness_attributes if i in fair else (),
            min_win_rate=s.min_win_rate if i == crowd_at else None,
            min_votes=s.min_votes if i == crowd_at else 0,
            latency_budget_ms=s.latency_budget_ms if i == 0 else None,
        )
        part_gates = evaluate_gates(
            deltas=a.deltas, fairness=a.fairness_groups,
            latency=part.latency.get("candidate") or {}, crowd=a.crowd,
            config_differences=a.diffs, settings=own, holm=False,
        )  # fmt: skip
        gates += [replace(g, dataset=part.dataset) for g in part_gates]
    gates += _instance_gates_without_evidence(analyses, s)
    return apply_holm(gates, s.alpha)


def _instance_gates_without_evidence(analyses: list[_Analysis], s: GateSettings) -> list[Gate]:
    """A family that enabled an instance-metric gate gets it as `insufficient` when no set of
    the report has instance masks (never a silently missing gate)."""
    out = []
    for metric, _margin in s.metric_margins.items():
        m = BY_NAME.get(metric)
        if m is None or not m.instances or any(metric in a.deltas for a in analyses):
            continue
        out.append(
            Gate(
                name=f"{m.label} non-inferiority",
                kind="metric",
                status=INSUFFICIENT,
                text=f"{m.label}: no set of this report has instance masks in both runs",
            )
        )
    return out


def build_suite_report(parts: Sequence[ReleaseInputs], settings: GateSettings) -> dict[str, Any]:
    """One report over several set versions of the same candidate/baseline pair (the first is
    the quality set: its metrics, gating, latency and gallery are the report's top level)."""
    if not parts:
        raise ValueError("a release report needs at least one set version")
    s = settings
    analyses = [_analyse(p, s) for p in parts]
    gates = _suite_gates(parts, analyses, s)
    verdict = verdict_of(gates)
    inputs, first = parts[0], analyses[0]
    fair = next((a for a in analyses if a.fairness_groups is not None), first)
    crowd_at = next((i for i, p in enumerate(parts) if p.crowd is not None), None)
    metric = s.fairness_metric
    no_subject = np.asarray(inputs.no_subject, dtype=bool)
    return {
        "candidate": inputs.candidate,
        "baseline": inputs.baseline,
        "dataset": inputs.dataset,
        "datasets": [p.dataset for p in parts],
        "runs": dict(inputs.runs),
        "verdict": verdict,
        "exit_code": EXIT_CODES[verdict],
        "items": {"paired": len(inputs.items), "dropped": inputs.dropped},
        "gates": [g.as_dict() for g in gates],
        "metrics": {name: d.as_dict() for name, d in first.deltas.items()},
        "sets": [
            {
                "dataset": p.dataset,
                "runs": dict(p.runs),
                "items": {"paired": len(p.items), "dropped": p.dropped},
                "metrics": {name: d.as_dict() for name, d in a.deltas.items()},
                "fairness": a.fairness["available"],
                "crowd": p.crowd is not None,
            }
            for p, a in zip(parts, analyses, strict=True)
        ],
        "gating": {
            "candidate": _gating(np.asarray(inputs.candidate_gated, bool), no_subject),
            "baseline": _gating(np.asarray(inputs.baseline_gated, bool), no_subject),
        },
        "fairness": fair.fairness,
        "latency": {
            **{k: dict(v) for k, v in inputs.latency.items()},
            "budget_ms": s.latency_budget_ms,
        },
        # contract: null without a campaign
        "crowd": analyses[crowd_at].crowd.section if crowd_at is not None else None,
        "postprocess": {
            "same": not first.diffs,
            "differences": first.diffs,
            "baseline": dict(inputs.postprocess.get("baseline") or {}),
            "candidate": dict(inputs.postprocess.get("candidate") or {}),
        },
        "gallery": _gallery(
            inputs,
            first.fair_b
            if metric == "iou"
            else np.asarray(inputs.baseline_metrics["iou"], np.float64),
            first.fair_c
            if metric == "iou"
            else np.asarray(inputs.candidate_metrics["iou"], np.float64),
        ),
        "settings": s.as_dict(),
        **dict(inputs.extra),
    }
