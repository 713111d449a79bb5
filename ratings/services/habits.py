"""The campaign report's raters'-habits section: side preference, Bradley–Terry with a side term
and Davidson ties, and raters improbable under the consensus (flagged for review, never dropped).

All statistics are `pipelines.stats.habits` and `pipelines.stats.bt_davidson`; this module reads
one narrow row per non-gold pairwise rating (annotator, runs, side shown, choice as shown) and
lines them up. Sides are drawn per task and annotator (`ratings.services.serving`), so a share of
left picks away from 1/2 is the rater's habit, not the models'.

- `side`: the crowd's and each rater's share of decisive votes (left or right) for the left image,
  Clopper–Pearson interval at the campaign's 1 - alpha and exact binomial p-value vs 1/2
  (raters BH-adjusted), with a sentence for the page.
- `bt_side`: strengths (reference = 0) with standard errors, the left-side bonus `home` (log
  odds) and the tie propensity `tie`, from the votes the report keeps (the exclusion switch
  applies, as to the other scores).
- `improbable`: per rater, Fisher's combination of per-vote p-values under the consensus fit to
  all votes, BH-adjusted; `flagged` lists raters below alpha, shown "for review". The gold QC
  (`qc.flagged`) is what the exclusion switch acts on; this list never removes a vote.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db.models import QuerySet

from pipelines.stats.bt_davidson import fit_davidson, side_counts
from pipelines.stats.habits import SidePreference, improbable_raters, side_preference
from ratings.models import Campaign, Rating, Stratum

CHOICES = ("left", "right", "tie", "both_bad")


def _rows(ratings: QuerySet[Rating], index: dict[int, int]) -> dict[str, np.ndarray]:
    rows = list(
        ratings.exclude(task__stratum=Stratum.GOLD)
        .filter(shown_choice__in=CHOICES)
        .order_by("pk")
        .values_list(
            "annotator__username",
            "task__run_a_id",
            "task__run_b_id",
            "assignment__left_is_a",
            "shown_choice",
        )
    )
    rows = [r for r in rows if r[1] in index and r[2] in index]
    who = np.asarray([r[0] for r in rows], dtype=str)
    a = np.asarray([index[r[1]] for r in rows], dtype=np.int64)
    b = np.asarray([index[r[2]] for r in rows], dtype=np.int64)
    left_is_a = np.asarray([bool(r[3]) for r in rows], dtype=bool)
    return {
        "rater": who,
        "left": np.where(left_is_a, a, b),
        "right": np.where(left_is_a, b, a),
        "choice": np.asarray([r[4] for r in rows], dtype=str),
    }


def _side_dict(s: SidePreference) -> dict[str, Any]:
    return {
        "annotator": s.rater,
        "decisive": s.decisive,
        "left": s.left,
        "share": s.share,
        "ci": list(s.ci),
        "p_value": s.p_value,
        "p_adjusted": s.p_adjusted,
        "flagged": s.flagged,
    }


def side_sentence(s: SidePreference, alpha: float) -> str:
    """One line for the page, e.g. "the crowd picks the left image in 52 % of 400 decisive votes
    [47 %, 57 %] (p = 0.41): no side preference at α = 0.05"."""
    if s.share is None:
        return "side preference: no decisive (left or right) votes yet"
    lean = f"leans {'left' if s.share > 0.5 else 'right'}" if s.flagged else "no side preference"
    return (
        f"the crowd picks the left image in {s.share:.0%} of {s.decisive} decisive votes "
        f"[{s.ci[0]:.0%}, {s.ci[1]:.0%}] (p = {s.p_value:.2g}): {lean} at α = {alpha:g}"
    )


def habits_section(
    *,
    campaign: Campaign,
    ratings: QuerySet[Rating],
    kept: QuerySet[Rating],
    names: list[str],
    ids: list[int],
    reference: int,
) -> dict[str, Any]:
    """The payload's `habits` section (shape in `ratings.services.reports`)."""
    index = {run: i for i, run in enumerate(ids)}
    alpha = campaign.alpha
    everyone = _rows(ratings, index)
    crowd, per_rater = side_preference(everyone["rater"], everyone["choice"], alpha=alpha)
    section: dict[str, Any] = {
        "alpha": alpha,
        "side": {
            "crowd": _side_dict(crowd),
            "raters": [_side_dict(s) for s in per_rater],
            "flagged": [s.rater for s in per_rater if s.flagged],
            "text": side_sentence(crowd, alpha),
        },
        "bt_side": None,
        "improbable": {"raters": [], "flagged": []},
        "note": None,
    }
    if not len(everyone["rater"]):
        return section
    mine = _rows(kept, index) if kept is not ratings else everyone
    try:  # the model needs some ties (and votes) to estimate its tie propensity
        fit = fit_davidson(
            side_counts(mine["left"], mine["right"], mine["choice"], len(ids)), reference=reference
        )
        _, raters = improbable_raters(
            everyone["rater"],
            everyone["left"],
            everyone["right"],
            everyone["choice"],
            len(ids),
            alpha=alpha,
            seed=campaign.seed,
        )
    except ValueError as exc:
        section["note"] = f"not fitted yet: {exc}"
        return section
    if len(mine["rater"]):
        section["bt_side"] = {
            "reference": names[reference],
            "votes": len(mine["rater"]),
            "strengths": [
                {
                    "run": names[i],
                    "run_id": ids[i],
                    "estimate": float(fit.strengths[i]),
                    "se": float(fit.strengths_se[i]),
                }
                for i in range(len(ids))
            ],
            "home": fit.home,
            "home_se": fit.home_se,
            "tie": fit.tie,
            "converged": fit.converged,
        }
    section["improbable"] = {
        "raters": [
            {
                "annotator": str(r.rater),
                "votes": r.votes,
                "p_value": r.p_value,
                "p_adjusted": r.p_adjusted,
                "flagged": r.flagged,
            }
            for r in sorted(raters, key=lambda r: (r.p_adjusted, str(r.rater)))
        ],
        "flagged": sorted(str(r.rater) for r in raters if r.flagged),
    }
    return section
