"""A campaign's votes on one pair of runs, as a release report's crowd gate reads them.

The release app gathers its report's arrays without reading this app's tables: it asks
`crowd_votes` and gets the typed `pipelines.release.CrowdVotes`.
"""

from __future__ import annotations

import math

import numpy as np
from django.contrib.auth.models import User

from pipelines.release import CrowdVotes
from ratings.models import SIMULATED_GROUP, Campaign, Rating, Stratum
from ratings.services.reports import excluded_annotators

#: A vote in the orientation it was cast (run_a's view) -> the CrowdVotes code.
CODE = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}
#: The code seen from the other run (a and b swap; a tie and both-bad stay).
SWAP = {0: 1, 1: 0, 2: 2, 3: 3}


def crowd_votes(*, campaign: Campaign, candidate_run: int, baseline_run: int) -> CrowdVotes:
    """Non-gold votes between the two runs (annotators the campaign report excludes left out), in
    candidate orientation: 0 candidate better, 1 baseline better, 2 tie, 3 both bad; in arrival
    order, with the campaign's alpha, margin and number of pairs, so the crowd gate's sequential
    decision is the one the campaign page shows for this pair."""
    pair = (candidate_run, baseline_run)
    rows = list(
        Rating.objects.filter(campaign=campaign, task__run_a__in=pair, task__run_b__in=pair)
        .exclude(task__stratum=Stratum.GOLD)
        .exclude(annotator__username__in=excluded_annotators(campaign=campaign))
        .exclude(outcome="")
        .order_by("pk")
        .values_list("task__item_id", "task__run_a_id", "outcome", "task__stratum", "reasons",
                     "annotator_id")
    )  # fmt: skip
    simulated = set(
        User.objects.filter(groups__name=SIMULATED_GROUP, pk__in={r[5] for r in rows})
        .values_list("pk", flat=True)
    )  # fmt: skip
    outcome = [CODE[o] if run_a == candidate_run else SWAP[CODE[o]] for _, run_a, o, *_ in rows]
    return CrowdVotes(
        campaign=campaign.pk,
        items=np.array([r[0] for r in rows], np.int64),
        outcome=np.array(outcome, np.int64),
        stratum=np.array([r[3] for r in rows], dtype=str),
        reasons=[list(r[4] or []) for r in rows],
        simulated=np.array([r[5] in simulated for r in rows], bool),
        alpha=campaign.alpha,
        margin=campaign.margin,
        pairs=math.comb(campaign.runs.count(), 2),
    )
