"""Confidence-gate statistics for the reference network: threshold choice, gating rates, ECE.

Pure numpy. The platform gates an image when ``sigmoid(confidence logit) < gate_threshold``
(strictly below, ``pipelines.postprocess.gate.decide``) and then scores an all-zero alpha; the
numbers here follow exactly that rule, so a card's gating lines are what an evaluation run reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

#: Most of the subject items a chosen threshold may gate (the product's target: ≤ 3 %).
MAX_SUBJECT_GATED = 0.03


def gated(probs: np.ndarray, threshold: float) -> np.ndarray:
    """The platform's rule: gated when confidence < threshold (strictly; NaN gates)."""
    return ~(np.asarray(probs, np.float64) >= threshold)


def pick_threshold(
    probs: Sequence[float] | np.ndarray,
    has_subject: Sequence[bool] | np.ndarray,
    max_subject_gated: float = MAX_SUBJECT_GATED,
) -> float:
    """Threshold maximising balanced accuracy with at most ``max_subject_gated`` subjects gated.

    Candidates are the midpoints between consecutive distinct confidences (plus 0), so the chosen
    value keeps a margin to the nearest item on both sides; ties go to the lowest threshold (the one
    gating the fewest subject items). Balanced accuracy = mean of (no-subject items gated) and
    (subject items passed).
    """
    p = np.asarray(probs, np.float64)
    pos = np.asarray(has_subject, bool)
    if p.shape != pos.shape or p.ndim != 1 or p.size == 0:
        raise ValueError("probs and has_subject must be equal-length non-empty 1-D arrays")
    u = np.unique(p[np.isfinite(p)])
    candidates = np.concatenate([[0.0], (u[:-1] + u[1:]) / 2]) if u.size else np.array([0.0])
    best_t, best_ba = 0.0, -1.0
    for t in candidates:
        g = gated(p, float(t))
        subj_gated = float(g[pos].mean()) if pos.any() else 0.0
        if subj_gated > max_subject_gated:
            break  # thresholds only grow from here: more subjects gated
        neg_gated = float(g[~pos].mean()) if (~pos).any() else 0.0
        ba = 0.5 * (neg_gated + 1.0 - subj_gated)
        if ba > best_ba + 1e-12:
            best_t, best_ba = float(t), ba
    return best_t


@dataclass
class ReliabilityBin:
    lo: float
    hi: float
    n: int
    mean_confidence: float
    subject_share: float


def reliability(
    probs: Sequence[float] | np.ndarray, has_subject: Sequence[bool] | np.ndarray, bins: int = 10
) -> tuple[float, list[ReliabilityBin]]:
    """(expected calibration error, per-bin table) of P(subject) over equal-width bins.

    ECE = Σ_b (n_b / N) · |mean confidence_b − share of subject items_b| (bins (lo, hi], the first
    one closed at 0): the binary form for a probability of the positive class.
    """
    p = np.asarray(probs, np.float64)
    y = np.asarray(has_subject, np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, p, side="left") - 1, 0, bins - 1)
    table: list[ReliabilityBin] = []
    ece = 0.0
    for b in range(bins):
        sel = idx == b
        n = int(sel.sum())
        mc = float(p[sel].mean()) if n else float("nan")
        sh = float(y[sel].mean()) if n else float("nan")
        if n:
            ece += n / p.size * abs(mc - sh)
        table.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), n, mc, sh))
    return float(ece), table


@dataclass
class GateReport:
    """Validation numbers of one model: ungated/gated IoU, gating rates, calibration."""

    threshold: float
    val_iou: float  # mean IoU over the validation items, no gate (the card's validation_iou)
    val_iou_gated: float  # same items, gated ones scored as an all-zero alpha
    n_subject: int
    n_no_subject: int
    gated_subject: float  # share of subject items (non-empty GT) gated
    gated_no_subject: float  # share of no-subject items (empty GT) gated
    n_extra_negatives: int  # validation-only negatives (crops/generator), not in the IoU
    gated_extra_negatives: float
    ece: float
    reliability: list[ReliabilityBin] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def gate_report(
    *,
    ious: Sequence[float],
    probs: Sequence[float],
    has_subject: Sequence[bool],
    extra_probs: Sequence[float] = (),
    threshold: float | None = None,
    max_subject_gated: float = MAX_SUBJECT_GATED,
) -> GateReport:
    """Gate statistics of validation items (``ious`` ungated, both-empty = 1) + extra negatives.

    The threshold (unless given) is picked on the validation items and the extra negatives together.
    """
    iou = np.asarray(ious, np.float64)
    p = np.asarray(probs, np.float64)
    pos = np.asarray(has_subject, bool)
    extra = np.asarray(extra_probs, np.float64)
    all_p = np.concatenate([p, extra])
    all_pos = np.concatenate([pos, np.zeros(extra.size, bool)])
    t = pick_threshold(all_p, all_pos, max_subject_gated) if threshold is None else threshold
    g = gated(p, t)
    # Gated output is an all-zero alpha: IoU 1 against an empty GT, 0 against a subject.
    iou_gated = np.where(g, np.where(pos, 0.0, 1.0), iou)
    ece, table = reliability(all_p, all_pos)

    def share(mask: np.ndarray) -> float:
        return float(mask.mean()) if mask.size else float("nan")

    return GateReport(
        threshold=float(t),
        val_iou=float(iou.mean()),
        val_iou_gated=float(iou_gated.mean()),
        n_subject=int(pos.sum()),
        n_no_subject=int((~pos).sum()),
        gated_subject=share(g[pos]),
        gated_no_subject=share(g[~pos]),
        n_extra_negatives=int(extra.size),
        gated_extra_negatives=share(gated(extra, t)),
        ece=ece,
        reliability=table,
    )


def reliability_markdown(table: Sequence[ReliabilityBin]) -> str:
    """The reliability table as a Markdown table (empty bins shown with n = 0)."""
    rows = [
        "| confidence bin | items | mean confidence | share with a subject |",
        "|---|---|---|---|",
    ]
    for b in table:
        mc = "–" if b.n == 0 else f"{b.mean_confidence:.3f}"
        sh = "–" if b.n == 0 else f"{b.subject_share:.3f}"
        rows.append(f"| {b.lo:.1f}–{b.hi:.1f} | {b.n} | {mc} | {sh} |")
    return "\n".join(rows)
