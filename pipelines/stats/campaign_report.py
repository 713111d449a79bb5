"""The statistics of a campaign report, from its count tables (no database).

`campaign_statistics` takes the vote tables of everyone and of the raters QC flagged, chooses the
kept votes (flagged raters left out when the campaign excludes them, the other setting kept for
comparison) and computes every crowd section the stored report carries: agreement, Bradley–Terry
per stratum with withheld numbers, pair vote counts, both-bad rates, the items people disagree on
and where the metric disagrees with people; absolute campaigns get mean scores instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipelines.payloads.campaign import BTScores, Estimate, PairRates, Strength, VsReference
from pipelines.stats.bootstrap import Interval
from pipelines.stats.bradley_terry import BTReport
from pipelines.stats.campaign import (
    TaskTable,
    absolute_means,
    agreement,
    both_bad_rate,
    bt,
    human_disagreement,
    metric_divergence,
    pair_outcome_counts,
)

#: Strata of the stored scores; "all" pools them.
STRATA = ("control", "disagreement", "all")


def _estimate(iv: Interval | None, enough: bool = True) -> Estimate:
    """The interval as stored: withheld below the vote minimum, NaN as None."""
    if iv is None or not enough:
        return Estimate.withheld()
    values = [None if math.isnan(v) else float(v) for v in (iv.estimate, iv.low, iv.high)]
    return Estimate(*values)


def bt_scores(
    report: BTReport | None, names: list[str], ids: list[int], *, min_votes: int
) -> BTScores | None:
    """Bradley–Terry as stored; numbers resting on fewer than `min_votes` votes withheld."""
    if report is None:
        return None
    k = len(names)
    ref = names.index(report.reference)
    votes = np.zeros((k, k), dtype=np.int64)
    for p in report.pairs:
        votes[p.a, p.b] = votes[p.b, p.a] = p.votes
    run_votes = votes.sum(axis=1)
    strengths = []
    for i, name in enumerate(names):
        enough = bool(i == ref or run_votes[i] >= min_votes)
        strengths.append(Strength(
            run=name, run_id=ids[i], value=_estimate(report.strengths[name], enough),
            votes=int(run_votes[i]), enough=enough, needed=min_votes,
            both_bad=_estimate(report.both_bad[name], bool(run_votes[i] >= min_votes)),
        ))  # fmt: skip
    pairs, vs_ref = [], []
    for p in report.pairs:
        enough = p.votes >= min_votes
        rates = {m: _estimate(getattr(p, m), enough) for m in ("win", "tie", "loss", "both_bad")}
        pairs.append(PairRates(
            a=names[p.a], a_id=ids[p.a], b=names[p.b], b_id=ids[p.b], votes=int(p.votes),
            items=int(p.items), enough=enough, needed=min_votes, **rates,
        ))  # fmt: skip
        if ref in (p.a, p.b):
            other = p.b if p.a == ref else p.a
            win, loss = ("loss", "win") if p.a == ref else ("win", "loss")
            vs_ref.append(VsReference(
                run=names[other], run_id=ids[other], votes=int(p.votes), enough=enough,
                needed=min_votes, win=rates[win], tie=rates["tie"], loss=rates[loss],
                both_bad=rates["both_bad"],
            ))  # fmt: skip
    return BTScores(
        reference=report.reference, reference_id=ids[ref], votes=int(report.votes),
        items=int(report.items), connected=bool(report.fit.connected),
        strengths=tuple(strengths), pairs=tuple(pairs), vs_reference=tuple(vs_ref),
    )  # fmt: skip


def pair_votes(table: TaskTable, names: list[str], ids: list[int]) -> list[dict[str, Any]]:
    """Vote counts per pair of runs that has any (a wins, b wins, tie, both bad)."""
    per = pair_outcome_counts(table, len(names))
    out = []
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            c = per[a, b]
            if c.sum():
                out.append({
                    "a": names[a], "a_id": ids[a], "b": names[b], "b_id": ids[b],
                    "a_wins": int(c[0]), "b_wins": int(c[1]), "tie": int(c[2]),
                    "both_bad": int(c[3]), "total": int(c.sum()),
                })  # fmt: skip
    return out


@dataclass(frozen=True)
class CampaignStatistics:
    kept: TaskTable
    excluded_ratings: int
    agreement: dict[str, Any]
    #: Absolute mode: one row per run (run, run_id, n, estimate, low, high).
    absolute: list[dict[str, Any]] | None = None
    scores: dict[str, BTScores | None] = field(default_factory=dict)
    scores_other_setting: BTScores | None = None
    pair_votes: list[dict[str, Any]] = field(default_factory=list)
    both_bad_rate: dict[str, float | None] = field(default_factory=dict)
    #: Rows keyed by `task` (the caller names their item and runs).
    human_disagreement: list[dict[str, Any]] = field(default_factory=list)
    metric_divergence: list[dict[str, Any]] = field(default_factory=list)


def campaign_statistics(
    *,
    everyone: TaskTable,
    flagged_only: TaskTable | None,
    exclude_flagged: bool,
    absolute: bool,
    names: list[str],
    ids: list[int],
    reference: int,
    task_ids: NDArray[np.int64],
    iou_a: NDArray[np.float64],
    iou_b: NDArray[np.float64],
    min_votes: int,
    rounds: int,
    seed: int,
) -> CampaignStatistics:
    """Every crowd section of the report. `task_ids` (sorted) with `iou_a` / `iou_b` give each
    task's metric values, for where the metric disagrees with people."""
    without = everyone.minus(flagged_only) if flagged_only is not None else everyone
    kept, other = (without, everyone) if exclude_flagged else (everyone, without)
    excluded = int(everyone.counts.sum() - kept.counts.sum())
    if absolute:
        rows = [
            {"run": names[i], "run_id": ids[i], "n": n, **_estimate(iv).to_dict()}
            for i, (n, iv) in enumerate(absolute_means(kept, len(names), rounds=rounds, seed=seed))
        ]
        return CampaignStatistics(kept, excluded, agreement(kept, level="ordinal").as_dict(),
                                  absolute=rows)  # fmt: skip

    def fit(table: TaskTable) -> BTScores | None:
        report = bt(table, names, reference=reference, rounds=rounds, seed=seed)
        return bt_scores(report, names, ids, min_votes=min_votes)

    def stratum(s: str) -> TaskTable:
        return kept.in_stratum(None if s == "all" else s)

    pos = np.searchsorted(task_ids, kept.task)
    return CampaignStatistics(
        kept=kept,
        excluded_ratings=excluded,
        agreement=agreement(kept).as_dict(),
        scores={s: fit(stratum(s)) for s in STRATA},
        scores_other_setting=fit(other),
        pair_votes=pair_votes(kept, names, ids),
        both_bad_rate={s: both_bad_rate(stratum(s)) for s in STRATA},
        human_disagreement=human_disagreement(kept),
        metric_divergence=metric_divergence(kept, iou_a[pos], iou_b[pos]),
    )
