"""Crowd section of a release report: candidate vs baseline from a campaign's votes.

Definitions (votes in candidate orientation: 0 candidate better, 1 baseline better, 2 tie,
3 both bad):
- Win rate = (candidate wins + half the ties) / (wins + losses + ties): both-bad votes say nothing
  about which lift is better and are reported on their own as the both-bad rate (share of all
  votes). Computed from the campaign's unbiased *control* stratum only: disagreement-first items
  were chosen where the runs differ most and would exaggerate any preference.
- Intervals: percentile bootstrap over rated items with all their votes (pipelines.stats).
- Bradley–Terry strengths from the same control votes, anchored at the baseline (= 0).
- `simulated_votes`: how many of the control votes came from simulated (scripted) raters, so every
  page that shows the crowd numbers can say so.
- `sequential`: the anytime-valid decision on the same control votes in arrival order
  (`pipelines.stats.sequential.monitor`, candidate = 1, baseline = 0, tie and both bad = 1/2) at
  the campaign's alpha divided by its number of pairs (Bonferroni, as the campaign page monitors
  all its pairs) and margin: exactly the decision the campaign page shows for this pair, which
  stays valid although anyone may have looked after every vote. The crowd gate reads it.
- Below `min_votes` control votes for the pair nothing is estimated: the section says
  "not enough votes (12 of 50)" and carries no rate or strength, so no number from two votes can
  reach a release decision.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipelines.stats.bootstrap import (
    DEFAULT_LEVEL,
    DEFAULT_ROUNDS,
    FloatArray,
    iter_count_chunks,
    percentile_interval,
)
from pipelines.stats.bradley_terry import bradley_terry
from pipelines.stats.pairs import ItemPairCounts
from pipelines.stats.sequential import describe, monitor

#: Sequence scores of the crowd codes (0 candidate better, 1 baseline better, 2 tie, 3 both bad).
SEQUENTIAL_SCORE = np.array([1.0, 0.0, 0.5, 0.5])

CONTROL = "control"
TOP_REASONS = 5


@dataclass(frozen=True)
class CrowdVotes:
    """One row per non-gold vote between the candidate's and the baseline's run."""

    campaign: int
    items: NDArray[Any]
    outcome: NDArray[np.int64]
    stratum: NDArray[np.str_]
    reasons: list[list[str]]
    # True for a vote of a simulated (scripted) rater: counted like any vote, labelled as such.
    simulated: NDArray[np.bool_] | None = None
    # The campaign's decision settings: its alpha, equivalence margin and number of pairs
    # (Bonferroni). Votes must be in arrival order for the sequential decision.
    alpha: float = 0.05
    margin: float | None = None
    pairs: int = 1

    def __post_init__(self) -> None:
        n = len(self.items)
        if not (len(self.outcome) == len(self.stratum) == len(self.reasons) == n):
            raise ValueError("items, outcome, stratum and reasons need one entry per vote")
        if self.simulated is not None and len(self.simulated) != n:
            raise ValueError("simulated needs one entry per vote")


@dataclass(frozen=True)
class CrowdResult:
    section: dict[str, Any]
    win_samples: FloatArray | None = field(default=None, repr=False)

    @property
    def votes(self) -> int:
        return int(self.section["votes"])


def not_enough(votes: int, minimum: int) -> str:
    return f"not enough votes ({votes} of {minimum})"


def _per_item_counts(items: NDArray[Any], outcome: NDArray[np.int64]) -> FloatArray:
    _, inverse = np.unique(items, return_inverse=True)
    counts = np.zeros((inverse.max() + 1, 4))
    np.add.at(counts, (inverse, outcome), 1.0)
    return counts


def sequential_decision(votes: CrowdVotes) -> dict[str, Any]:
    """The anytime-valid decision on the control votes in arrival order, with its sentence."""
    control = votes.stratum == CONTROL
    x = SEQUENTIAL_SCORE[votes.outcome[control].astype(np.int64)]
    pairs = max(int(votes.pairs), 1)
    r = monitor(x, votes.alpha / pairs, votes.margin)
    text = describe(r, family_alpha=votes.alpha, pairs=pairs)
    return {**r.as_dict(), "family_alpha": votes.alpha, "pairs": pairs, "text": text}


def crowd_section(
    votes: CrowdVotes | None,
    *,
    min_votes: int,
    rounds: int = DEFAULT_ROUNDS,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> CrowdResult:
    """The crowd section (JSON-ready) and the bootstrap win-rate samples for the crowd gate."""
    if votes is None:
        return CrowdResult(
            {
                "available": False,
                "campaign": None,
                "votes": 0,
                "min_votes": min_votes,
                "note": "no rating campaign compares these runs",
                "win_rate": None,
                "both_bad": None,
                "strength": None,
                "top_reasons": [],
            }
        )
    control = votes.stratum == CONTROL
    n = int(np.count_nonzero(control))
    reasons = Counter(tag for tags in votes.reasons for tag in tags)
    section: dict[str, Any] = {
        "available": True,
        "campaign": votes.campaign,
        "stratum": CONTROL,
        "votes": n,
        "all_votes": len(votes.items),
        "min_votes": min_votes,
        "note": "",
        "win_rate": None,
        "both_bad": None,
        "strength": None,
        "top_reasons": [{"reason": r, "votes": c} for r, c in reasons.most_common(TOP_REASONS)],
        "simulated_votes": 0
        if votes.simulated is None
        else int(np.count_nonzero(votes.simulated & control)),
        "sequential": sequential_decision(votes),
    }
    if n < max(min_votes, 1):
        section["note"] = not_enough(n, min_votes)
        return CrowdResult(section)
    items, outcome = votes.items[control], votes.outcome[control].astype(np.int64)
    per_item = _per_item_counts(items, outcome)
    wins, losses, ties, bad = (per_item[:, k] for k in range(4))
    decided = wins + losses + ties
    rates, bads = [], []
    for c in iter_count_chunks(len(per_item), rounds, seed):
        with np.errstate(invalid="ignore", divide="ignore"):
            rates.append((c @ (wins + 0.5 * ties)) / (c @ decided))
            bads.append((c @ bad) / (c @ per_item.sum(axis=1)))
    win_samples = np.concatenate(rates)
    bad_samples = np.concatenate(bads)
    total_decided = decided.sum()
    if total_decided:
        point = float((wins.sum() + 0.5 * ties.sum()) / total_decided)
        finite = win_samples[np.isfinite(win_samples)]
        lo, hi = percentile_interval(finite, level)
        section["win_rate"] = {
            "estimate": point,
            "ci": [float(lo), float(hi)],
            "wins": int(wins.sum()),
            "losses": int(losses.sum()),
            "ties": int(ties.sum()),
        }
    else:
        win_samples = np.zeros(0)
    blo, bhi = percentile_interval(bad_samples, level)
    section["both_bad"] = {
        "estimate": float(bad.sum() / per_item.sum()),
        "ci": [float(blo), float(bhi)],
        "votes": int(bad.sum()),
    }
    # Bradley–Terry over the same votes: model 1 = candidate (shown as "a"), 0 = baseline.
    counts = ItemPairCounts.from_votes(
        items, np.ones(n, np.int64), np.zeros(n, np.int64), outcome, n_models=2
    )
    bt = bradley_terry(
        counts, ("baseline", "candidate"), reference=0, rounds=rounds, level=level, seed=seed
    )
    s = bt.strengths["candidate"]
    section["strength"] = {"estimate": s.estimate, "ci": [s.low, s.high], "anchor": "baseline"}
    return CrowdResult(section, win_samples if len(win_samples) else None)
