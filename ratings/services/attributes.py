"""Attribute-annotation campaigns: annotators label the main subject's Monk skin tone and
perceived gender (or "no person" / "can't tell") on every item of a set version.

They reuse the rating machinery as it is: a `Campaign` in mode `attributes` with one `Task` per
item (no runs), the same leased `Assignment`s and k annotators per task (ratings.services.assign
claims them), one `Rating` per assignment holding `skin_tone` / `perceived_gender`. Aggregation and
annotator QC are pure compute (pipelines.fairness.annotation); accepting the result writes a new
attribute revision with source `annotated` through the datasets service, after which the fairness
reports of the set's runs are recomputed with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from evalsite.datasets import vocab
from evalsite.datasets.models import AttributeRevision, AttributeSource, DatasetVersion, Item
from evalsite.datasets.writing import attribute_revision_create
from pipelines.fairness.annotation import aggregate_labels, annotator_label_qc
from pipelines.stats.agreement import NO_LABELS
from ratings.models import (
    DEFAULT_OVERLAP,
    Assignment,
    Campaign,
    CampaignStatus,
    Mode,
    Rating,
    Stratum,
    Task,
)
from ratings.services.assign import (
    MAX_SECONDS,
    QUEUE_DEPTH,
    AssignmentNotFound,
    CampaignClosed,
    Queue,
    RatingError,
    Submitted,
    assignment_queue,
    held_campaign,
)

#: Keys of the annotator page (also shown on it): digits pick the swatch (0 = Monk 10).
TONE_KEYS = {**{str(t): str(t) for t in range(1, 10)}, "0": "10"}
GENDER_KEYS = {"w": "woman", "m": "man", "o": "other"}


class AttributeCampaignError(ValueError):
    """A campaign that cannot be created or accepted; the message names the field."""


def attribute_campaign_create(
    *, name: str, dataset_version: DatasetVersion, user: User | None = None,
    overlap: int = DEFAULT_OVERLAP, instructions: str = "", open_now: bool = False,
    seed: int = 0, lease_seconds: int | None = None,
) -> Campaign:  # fmt: skip
    """One task per item of the version, served in a shuffled order, k = ``overlap``."""
    if not name.strip():
        raise AttributeCampaignError("name: give the campaign a name")
    if not 1 <= overlap <= 10:
        raise AttributeCampaignError("overlap: k must be 1-10 annotators per item")
    items = list(Item.objects.filter(version=dataset_version).values_list("pk", flat=True))
    if not items:
        raise AttributeCampaignError("dataset_version: the set version has no items")
    order = np.random.default_rng(seed).permutation(len(items)).tolist()
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name.strip(), dataset_version=dataset_version, mode=Mode.ATTRIBUTES,
            overlap=overlap, items_per_pair=len(items), disagreement_share=0.0, gold_ratio=0.0,
            instructions=instructions, seed=seed, created_by=user,
            status=CampaignStatus.OPEN if open_now else CampaignStatus.DRAFT,
            **({"lease_seconds": lease_seconds} if lease_seconds else {}),
        )  # fmt: skip
        Task.objects.bulk_create(
            [
                Task(
                    campaign=campaign,
                    item_id=item,
                    run_a=None,
                    stratum=Stratum.CONTROL,
                    order=order[k],
                )
                for k, item in enumerate(items)
            ]
        )
    return campaign


def attribute_campaign_set_status(*, campaign: Campaign, status: str) -> Campaign:
    if status not in CampaignStatus.values:
        raise AttributeCampaignError(f"status: expected one of {CampaignStatus.values}")
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.refresh_from_db()
    return campaign


def attribute_queue(
    *, user: User, prefer: Campaign | None = None, depth: int = QUEUE_DEPTH
) -> Queue:
    """The annotator's live attribute assignments, topped up (a write: POST only): the preferred
    campaign (by default the one the annotator holds a live lease in), then open ones oldest
    first (claims, leases and k per task are ratings.services.assign's)."""
    if prefer is None:
        prefer = held_campaign(user=user, now=timezone.now(), attributes=True)
    open_campaigns = list(
        Campaign.objects.filter(status=CampaignStatus.OPEN, mode=Mode.ATTRIBUTES).order_by(
            "created_at", "pk"
        )
    )
    if prefer is not None:
        open_campaigns.sort(key=lambda c: c.pk != prefer.pk)
    for campaign in open_campaigns:
        queue = assignment_queue(user=user, campaign=campaign, depth=depth)
        if queue.assignments:
            return queue
    return Queue(None, [])


def _clean(skin_tone: Any, perceived_gender: Any) -> tuple[str, str]:
    tone = str(skin_tone or "").strip()
    gender = str(perceived_gender or "").strip()
    if tone == vocab.NOT_APPLICABLE or gender == vocab.NOT_APPLICABLE:
        return vocab.NOT_APPLICABLE, vocab.NOT_APPLICABLE  # "no person" sets both
    if tone not in vocab.SKIN_TONES:
        raise RatingError(
            "skin_tone: pick a Monk swatch 1-10, 'unknown' (can't tell) or "
            "'not_applicable' (no person)"
        )
    if gender not in vocab.GENDERS:
        raise RatingError(
            "perceived_gender: pick woman, man, other, 'unknown' (can't tell) or "
            "'not_applicable' (no person)"
        )
    return tone, gender


def attribute_label_submit(
    *, user: User, token: str, skin_tone: Any, perceived_gender: Any, seconds: float = 0.0
) -> Submitted:
    """Store one annotator's labels for an assignment; a repeated submit keeps the first."""
    assignment = (
        Assignment.objects.select_related("campaign").filter(token=token, annotator=user).first()
    )
    if assignment is None or assignment.campaign.mode != Mode.ATTRIBUTES:
        raise AssignmentNotFound("this task is not yours or does not exist")
    if assignment.campaign.status != CampaignStatus.OPEN:
        raise CampaignClosed("this campaign is closed: labels are no longer accepted")
    if assignment.submitted_at is not None:
        return Submitted(Rating.objects.get(assignment=assignment), False)
    tone, gender = _clean(skin_tone, perceived_gender)
    now = timezone.now()
    try:
        with transaction.atomic():
            rating = Rating.objects.create(
                assignment=assignment, task_id=assignment.task_id, campaign=assignment.campaign,
                annotator=user, skin_tone=tone, perceived_gender=gender,
                seconds=min(max(float(seconds or 0.0), 0.0), MAX_SECONDS),
                late=now > assignment.leased_until,
            )  # fmt: skip
            Assignment.objects.filter(pk=assignment.pk, submitted_at__isnull=True).update(
                submitted_at=now
            )
    except IntegrityError:  # a double submit racing this one stored it first
        return Submitted(Rating.objects.get(assignment=assignment), False)
    return Submitted(rating, True)


@dataclass
class AttributeResults:
    """Aggregated labels (by item stem), agreement, annotator QC and coverage of a campaign."""

    campaign: Campaign
    items: list[dict[str, Any]]
    qc: list[dict[str, Any]]
    excluded: set[str]
    tone_alpha: float | None
    gender_alpha: float | None
    mean_tone_agreement: float | None
    mean_gender_agreement: float | None
    agreement_note: str | None  # why agreement is absent ("not measurable (one label per item)")
    labelled: int
    complete: int
    total: int


def attribute_results(*, campaign: Campaign) -> AttributeResults:
    """Aggregate the campaign's labels (flagged annotators left out when the campaign says so)."""
    rows = list(
        Rating.objects.filter(campaign=campaign)
        .order_by("created_at", "pk")
        .values_list("task__item__stem", "annotator__username", "skin_tone", "perceived_gender",
                     "seconds")
    )  # fmt: skip
    total = Task.objects.filter(campaign=campaign).count()
    if rows:
        stems, who, tones, genders, secs = (list(col) for col in zip(*rows, strict=True))
    else:
        stems, who, tones, genders, secs = [], [], [], [], []
    qc = annotator_label_qc(stems, who, tones, genders, secs) if rows else []
    excluded = {q.annotator for q in qc if q.flagged} if campaign.exclude_flagged else set()
    keep = [k for k, w in enumerate(who) if w not in excluded]
    agg = (
        aggregate_labels(
            [stems[k] for k in keep], [tones[k] for k in keep], [genders[k] for k in keep]
        )
        if keep
        else {
            "items": [],
            "tone_alpha": None,
            "gender_alpha": None,
            "mean_tone_agreement": None,
            "mean_gender_agreement": None,
            "agreement_note": NO_LABELS,
        }
    )
    return AttributeResults(
        campaign=campaign,
        items=agg["items"],
        qc=[q.as_dict() for q in qc],
        excluded=excluded,
        tone_alpha=agg["tone_alpha"],
        gender_alpha=agg["gender_alpha"],
        mean_tone_agreement=agg["mean_tone_agreement"],
        mean_gender_agreement=agg["mean_gender_agreement"],
        agreement_note=agg["agreement_note"],
        labelled=len(agg["items"]),
        complete=sum(1 for i in agg["items"] if i["labels"] >= campaign.overlap),
        total=total,
    )


def attribute_campaign_accept(*, campaign: Campaign, user: User) -> AttributeRevision:
    """Write the aggregated labels as a new attribute revision (source `annotated`).

    Items nobody labelled keep their previous labels (see attribute_revision_create). The
    campaign is closed so the accepted labels are the ones it shows.
    """
    if campaign.mode != Mode.ATTRIBUTES:
        raise AttributeCampaignError("campaign: only an attributes campaign can be accepted")
    results = attribute_results(campaign=campaign)
    if not results.items:
        raise AttributeCampaignError("campaign: no labels yet; nothing to accept")
    labels = {i["item"]: (i["skin_tone"], i["perceived_gender"]) for i in results.items}
    revision = attribute_revision_create(
        version=campaign.dataset_version, labels=labels, source=AttributeSource.ANNOTATED,
        user=user,
        note=f"accepted from attribute campaign “{campaign.name}” (#{campaign.pk}): "
             f"{results.labelled} items labelled, k = {campaign.overlap}",
    )  # fmt: skip
    attribute_campaign_set_status(campaign=campaign, status=CampaignStatus.CLOSED)
    return revision
