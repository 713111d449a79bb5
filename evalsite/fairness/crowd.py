"""Crowd fairness of a run: in pairwise campaigns on its set that hold the run and a reference run,
the run's win rate against the reference per group (items resampled with all their votes), the
both-bad rate per group, and whether annotator agreement differs by group.

Computed with the run's fairness report (so it reflects the votes in at that time; recomputing the
report, e.g. `fairness_report --run ID`, picks up new votes).
"""

from __future__ import annotations

from typing import Any

from evalsite.datasets.models import AttributeRevision
from evalsite.evals.models import EvalRun
from evalsite.fairness.inputs import person_attributes
from pipelines.fairness import crowd_group_rates
from pipelines.fairness.grouping import GENDER, SKIN_TONE, attribute_labels, parse_tone_groups
from ratings.models import SIMULATED_GROUP, Campaign, Mode, Outcome, Rating

#: Outcome of a vote from the focus run's side, by (focus is run_a, stored outcome).
_SIDE: dict[tuple[bool, str], str] = {
    (True, Outcome.A.value): "win", (True, Outcome.B.value): "loss",
    (False, Outcome.A.value): "loss", (False, Outcome.B.value): "win",
}  # fmt: skip


def crowd_fairness(
    *, run: EvalRun, revision: AttributeRevision, tone_groups: str, rounds: int, seed: int = 0
) -> list[dict[str, Any]]:
    """One entry per campaign: ``{"campaign", "name", "reference_run", "votes", "simulated"
    (votes of simulated raters among them), "attributes":
    {skin_tone: crowd_group_rates(...), perceived_gender: ...}}``; empty without campaigns."""
    persons = person_attributes(revision)
    if not persons:
        return []
    ids = list(persons)
    labels = attribute_labels(
        [persons[i][0] for i in ids], [persons[i][1] for i in ids], parse_tone_groups(tone_groups)
    )
    label_of = {attr: dict(zip(ids, labels[attr], strict=True)) for attr in (SKIN_TONE, GENDER)}
    out = []
    campaigns = (
        Campaign.objects.filter(runs=run, mode=Mode.PAIRWISE, dataset_version=run.dataset_version)
        .exclude(reference_run=run)
        .exclude(reference_run__isnull=True)
    )
    for campaign in campaigns:
        ref = campaign.reference_run_id
        votes = (
            Rating.objects.filter(campaign=campaign, task__item_id__in=ids)
            .filter(task__run_a_id__in=[run.pk, ref], task__run_b_id__in=[run.pk, ref])
            .exclude(outcome="")
        )
        rows = list(votes.values_list("task__item_id", "task__run_a_id", "outcome"))
        if not rows:
            continue
        items = [r[0] for r in rows]
        outcomes = [_SIDE.get((r[1] == run.pk, r[2]), r[2]) for r in rows]
        out.append(
            {
                "campaign": campaign.pk,
                "name": campaign.name,
                "reference_run": ref,
                "votes": len(rows),
                "simulated": votes.filter(annotator__groups__name=SIMULATED_GROUP).count(),
                "attributes": {
                    attr: crowd_group_rates(
                        items,
                        [label_of[attr][i] for i in items],
                        outcomes,
                        rounds=rounds,
                        seed=seed,
                    )
                    for attr in (SKIN_TONE, GENDER)
                },
            }
        )
    return out
