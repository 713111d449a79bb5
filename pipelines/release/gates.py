"""Release gates, Holm across the gates of one report, and the verdict.

Every statistical gate is a one-sided test of "the candidate is acceptable":
- metric non-inferiority: H0 "oriented delta <= -margin" (MAE oriented so that lower is better);
- fairness (per attribute): H0 "some eligible group's oriented paired delta <= -margin", tested
  as an intersection-union test (p = the largest of the groups' p-values); and no flagged group;
- crowd: read from the anytime-valid sequence on the control votes (`crowd.section["sequential"]`,
  pipelines.release.crowd): pass when the candidate is preferred with the interval's lower end at
  or above the minimum win rate, or when the pair is equivalent within the campaign's margin and
  the minimum is at most 1/2; fail when the baseline is preferred; insufficient while undecided.
  Its error is controlled by the sequence at the campaign's alpha (valid however often anyone
  looked at the campaign), so it carries no bootstrap p-value and stays outside Holm.
p-values: bootstrap shares for metrics (pipelines.release.deltas.one_sided_p), one-sided
t-tests for fairness groups (pipelines.release.groups). Holm's step-down correction
runs over the statistical gates of one report; a gate passes when its Holm-adjusted p <= alpha.
With the default alpha 0.025 a lone gate passes exactly when the lower bound of its 95 % percentile
interval is at or above the threshold, the rule the gate's sentence quotes.
Latency (the candidate's tail statistic against a budget: its p99 from 100 measured images,
below that its slowest image, named "max" in the text; pipelines.stats.latency) and evidence
gates (enough votes, same post-processing) are deterministic and outside the Holm family. A
gate without evidence is `insufficient`; the verdict is `fail` if any gate fails, else
`insufficient` if any lacks evidence, else `pass` — a suggestion for the release manager,
never an automatic release.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from pipelines.fairness import display_group
from pipelines.metrics.registry import label as metric_label
from pipelines.metrics.registry import lower_is_better as registry_lower
from pipelines.stats.groups import holm_adjust
from pipelines.stats.latency import tail_text

from .crowd import CrowdResult, not_enough
from .deltas import MetricDelta
from .groups import GroupDelta

PASS, FAIL, INSUFFICIENT = "pass", "fail", "insufficient"
EXIT_CODES = {PASS: 0, FAIL: 3, INSUFFICIENT: 4}
ATTRIBUTE_LABELS = {"skin_tone": "skin tone", "perceived_gender": "perceived gender"}


@dataclass(frozen=True)
class GateSettings:
    """What a model family's gates require (stored per family as `releases.GateConfig`)."""

    metric_margins: Mapping[str, float] = field(
        default_factory=lambda: {"iou": 0.01, "boundary_f": 0.02, "mae": 0.01}
    )
    improvement_margin: float = 0.01
    fairness_metric: str = "iou"
    fairness_margin: float = 0.02
    fairness_attributes: Sequence[str] = ("skin_tone", "perceived_gender")
    min_group_size: int = 20
    latency_budget_ms: float | None = None
    min_win_rate: float | None = 0.5
    min_votes: int = 50
    alpha: float = 0.025
    rounds: int = 1000
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["metric_margins"] = dict(self.metric_margins)
        out["fairness_attributes"] = list(self.fairness_attributes)
        return out


@dataclass(frozen=True)
class Gate:
    name: str
    kind: str
    status: str
    text: str
    value: float | None = None
    ci: list[float] | None = None
    threshold: float | None = None
    group: str | None = None
    p_value: float | None = None
    p_holm: float | None = None
    dataset: str | None = None  # the set version the gate read (a report may cover a suite)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("value", "ci")}


def _f(x: float, signed: bool = True) -> str:
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _metric_gate(d: MetricDelta, margin: float) -> tuple[Gate, float]:
    label = metric_label(d.metric)
    threshold = margin if d.lower_is_better else -margin
    op = "<=" if d.lower_is_better else ">="
    bound = d.high if d.lower_is_better else d.low
    text = (
        f"{label} {_f(d.delta)} [{_f(d.low)}, {_f(d.high)}]; "
        f"{'upper' if d.lower_is_better else 'lower'} bound {_f(bound)} must be {op} "
        f"{_f(threshold)}"
    )
    gate = Gate(
        name=f"{label} non-inferiority",
        kind="metric",
        status=PASS,
        text=text,
        value=d.delta,
        ci=[d.low, d.high],
        threshold=threshold,
    )
    return gate, d.p_noninferior(margin)


def _fairness_gate(
    attribute: str, groups: list[GroupDelta], s: GateSettings, lower_is_better: bool
) -> tuple[Gate, float | None]:
    label = ATTRIBUTE_LABELS.get(attribute, attribute)
    name = f"fairness: {label}"
    metric = metric_label(s.fairness_metric)
    eligible = [g for g in groups if not g.too_small]
    if not eligible:
        text = (
            f"no {label} group has {s.min_group_size} or more images with labels; "
            "fairness cannot be judged"
        )
        return Gate(name=name, kind="fairness", status=INSUFFICIENT, text=text), None
    sign = -1.0 if lower_is_better else 1.0
    worst = min(eligible, key=lambda g: (sign * g.delta, g.group))
    flagged = [g for g in eligible if g.flagged]
    culprit = min(flagged, key=lambda g: (sign * g.delta, g.group)) if flagged else worst
    p = max(g.p_noninferior if g.p_noninferior is not None else 1.0 for g in eligible)
    threshold = s.fairness_margin if lower_is_better else -s.fairness_margin
    ci = (
        [culprit.low, culprit.high]
        if culprit.low is not None and culprit.high is not None
        else None
    )
    who = display_group(attribute, culprit.group)
    numbers = f"{metric} {_f(culprit.delta)} [{_f(culprit.low or 0)}, {_f(culprit.high or 0)}]"
    if flagged:
        text = (
            f"{who}: {numbers}, {_f(culprit.delta_vs_rest or 0)} against the other images "
            f"(Holm p {culprit.p_holm:.3g}): flagged"
        )
    else:
        text = (
            f"worst group {who}: {numbers}; must stay {'<=' if lower_is_better else '>='} "
            f"{_f(threshold)}"
        )
    gate = Gate(
        name=name,
        kind="fairness",
        status=FAIL if flagged else PASS,
        text=text,
        value=culprit.delta,
        ci=ci,
        threshold=threshold,
        group=culprit.group,
    )
    return gate, p


def _crowd_gate(crowd: CrowdResult, name: str, minimum: float) -> Gate:
    """The crowd gate from the anytime-valid decision (rule in the module docstring)."""
    seq = crowd.section["sequential"]
    decision = seq["decision"]
    lo, hi = seq["current_cs"]
    if decision == "baseline":
        status = FAIL
    elif decision == "candidate":
        status = PASS if lo >= minimum else INSUFFICIENT
    elif decision == "equivalent":
        status = PASS if minimum <= 0.5 else INSUFFICIENT
    else:
        status = INSUFFICIENT
    simulated = int(crowd.section.get("simulated_votes") or 0)
    rate = seq["current_rate"]
    text = (
        f"{seq['text']}; win rate {_f(rate, False)} [{_f(lo, False)}, {_f(hi, False)}] "
        f"(anytime-valid) from {crowd.votes} control votes"
        + (f" ({simulated} of them simulated)" if simulated else "")
        + f"; passes when the candidate is preferred with lower end >= {_f(minimum, False)}"
        + (" or no difference beyond the margin" if minimum <= 0.5 else "")
    )
    return Gate(name=name, kind="crowd", status=status, text=text, value=rate, ci=[lo, hi],
                threshold=minimum)  # fmt: skip


def evaluate_gates(
    *,
    deltas: Mapping[str, MetricDelta],
    fairness: Mapping[str, list[GroupDelta]] | None,
    latency: Mapping[str, Any] | None,
    crowd: CrowdResult,
    config_differences: list[str],
    settings: GateSettings,
    lower_is_better: frozenset[str] | None = None,
    holm: bool = True,
) -> list[Gate]:
    """Every gate of one report with its numbers, status and one sentence (Holm applied).

    `holm=False` leaves the statistical gates with their raw p-values, so a report over several
    set versions can run Holm once over the gates of all its sets (`apply_holm`)."""
    tested: list[tuple[Gate, float | None]] = []
    for metric, margin in settings.metric_margins.items():
        if metric in deltas:
            tested.append(_metric_gate(deltas[metric], margin))
    for attribute in settings.fairness_attributes:
        if fairness is None:
            tested.append(
                (
                    Gate(
                        name=f"fairness: {ATTRIBUTE_LABELS.get(attribute, attribute)}",
                        kind="fairness",
                        status=INSUFFICIENT,
                        text="fairness not available: the set has no person attributes",
                    ),
                    None,
                )
            )
            continue
        tested.append(
            _fairness_gate(
                attribute,
                fairness.get(attribute, []),
                settings,
                settings.fairness_metric
                in (registry_lower() if lower_is_better is None else lower_is_better),
            )
        )
    crowd_gates = settings.min_win_rate is not None or settings.min_votes > 0
    enough = crowd.section.get("win_rate") is not None and crowd.votes >= settings.min_votes
    if crowd_gates and settings.min_win_rate is not None:
        name = "crowd win rate"
        wr = crowd.section.get("win_rate")
        if not enough or wr is None or crowd.win_samples is None:
            why = crowd.section.get("note") or not_enough(crowd.votes, settings.min_votes)
            tested.append(
                (
                    Gate(
                        name=name,
                        kind="crowd",
                        status=INSUFFICIENT,
                        text=why,
                        threshold=settings.min_win_rate,
                    ),
                    None,
                )
            )
        else:
            tested.append((_crowd_gate(crowd, name, settings.min_win_rate), None))
    raw = [gate if p is None else replace(gate, p_value=float(p)) for gate, p in tested]
    gates = apply_holm(raw, settings.alpha) if holm else raw
    if settings.latency_budget_ms is not None:
        budget = settings.latency_budget_ms
        tail_ms = (latency or {}).get("tail_ms")
        if tail_ms is None:
            gates.append(
                Gate(
                    name="latency budget",
                    kind="latency",
                    status=INSUFFICIENT,
                    text="the candidate's run has no latency measurements",
                    threshold=budget,
                )
            )
        else:
            ok = tail_ms <= budget
            gates.append(
                Gate(
                    name="latency budget",
                    kind="latency",
                    status=PASS if ok else FAIL,
                    value=tail_ms,
                    threshold=budget,
                    text=f"candidate {tail_text(latency or {})} {'<=' if ok else '>'} budget "
                    f"{budget:.1f} ms",
                )
            )
    if crowd_gates and settings.min_votes > 0:
        ok = crowd.votes >= settings.min_votes
        gates.append(
            Gate(
                name="minimum votes",
                kind="evidence",
                status=PASS if ok else INSUFFICIENT,
                value=float(crowd.votes),
                threshold=float(settings.min_votes),
                text=(
                    f"{crowd.votes} control votes >= {settings.min_votes}"
                    if ok
                    else crowd.section.get("note") or not_enough(crowd.votes, settings.min_votes)
                ),
            )
        )
    gates.append(
        Gate(
            name="same post-processing",
            kind="evidence",
            status=INSUFFICIENT if config_differences else PASS,
            text=(
                "both runs used the same post-processing config"
                if not config_differences
                else "post-processing differs: " + "; ".join(config_differences)
            ),
        )
    )
    return gates


def apply_holm(gates: Sequence[Gate], alpha: float) -> list[Gate]:
    """Holm's step-down over the gates carrying a raw p-value: a passing gate whose adjusted p
    exceeds alpha fails; a gate already failing (a flagged group) stays failed."""
    adjusted = holm_adjust(np.array([np.nan if g.p_value is None else g.p_value for g in gates]))
    out: list[Gate] = []
    for gate, p_holm in zip(gates, adjusted, strict=True):
        if gate.p_value is None:
            out.append(gate)
            continue
        status = FAIL if gate.status == PASS and p_holm > alpha else gate.status
        note = "" if gate.status == FAIL else f" (Holm p {p_holm:.3g}, alpha {alpha})"
        out.append(replace(gate, status=status, p_holm=float(p_holm), text=gate.text + note))
    return out


def verdict_of(gates: Sequence[Gate]) -> str:
    statuses = {g.status for g in gates}
    if FAIL in statuses:
        return FAIL
    if INSUFFICIENT in statuses:
        return INSUFFICIENT
    return PASS
