"""Crowd rating data: campaigns over runs of one set, tasks, leased assignments and ratings.

Why this shape:
- A `Task` is one unit of rating (an item and a pair of runs; one run in absolute mode) with its
  stratum fixed at creation, so every report can be split by how its items were chosen.
- An `Assignment` is the claim on a task slot: it holds the lease, the randomised side order and
  the opaque token every annotator URL uses, so no run id ever reaches the browser. The database
  (not a cache) counts live claims: submitted assignments plus unexpired leases.
- A `Rating` is one-to-one with its assignment, so a double submit stores one rating; the choice as
  shown (left/right) is mapped to run identity (a/b) on save, because the side order is random.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.db import models

DEFAULT_OVERLAP = 3
# A campaign rates at most the items a set holds (200 000 is DATASET_ZIP_MAX_ENTRIES' default);
# the bound keeps the value inside its database column (10**30 once answered 500).
MAX_ITEMS_PER_PAIR = 1_000_000
DEFAULT_LEASE_SECONDS = 600  # 10 min: a slow annotator on a hard pair stays well inside it
REASON_TAGS = (
    ("edges", "edges / hair"),
    ("missing", "missing part"),
    ("extra", "extra background"),
    ("wrong_subject", "wrong subject"),
    ("artefacts", "artefacts"),
)
REASON_KEYS = frozenset(key for key, _ in REASON_TAGS)
#: Keyboard toggles of the reason tags on the rating page (with the reasons panel open).
REASON_HOTKEYS = {
    "edges": "e",
    "missing": "m",
    "extra": "x",
    "wrong_subject": "w",
    "artefacts": "a",
}


def new_token() -> str:
    """Opaque, unguessable id for annotator URLs (128 bits)."""
    return secrets.token_urlsafe(16)


class Mode(models.TextChoices):
    PAIRWISE = "pairwise"
    ABSOLUTE = "absolute"
    #: Annotators label the main subject's Monk skin tone and perceived gender (no runs shown);
    #: see ratings.services.attributes.
    ATTRIBUTES = "attributes"
    #: Instance lifts: the photo with one ground-truth instance selected (as a user taps a
    #: subject) and, side by side, the instance each run lifted for it (matched one-to-one by
    #: pipelines.metrics.instances); otherwise a pairwise campaign (keys, leases, gold, agreement).
    INSTANCES = "instances", "Instance lifts (one subject selected)"


#: Modes whose tasks compare two runs side by side (choice left/right/tie/both bad).
PAIRWISE_MODES = frozenset({Mode.PAIRWISE, Mode.INSTANCES})


def is_pairwise(mode: str) -> bool:
    return mode in PAIRWISE_MODES


class CampaignStatus(models.TextChoices):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"


class Stopping(models.TextChoices):
    """When a pairwise campaign stops asking for votes on a pair."""

    #: Every task gets its k votes (the fixed plan); the sequence is shown, never acted on.
    FIXED = "fixed"
    #: A pair stops being handed out once its anytime-valid sequence decides, and the whole
    #: campaign stops at its vote budget; open pairs are served by routing priority.
    UNTIL_DECIDED = "until_decided"


#: Gold share of a pair's tasks: 0 (no gold: QC cannot score anyone) or within CVAT's guidance.
GOLD_SHARE_BAND = (0.05, 0.15)
DEFAULT_GOLD_SHARE = 0.1
DEFAULT_ALPHA = 0.05


#: A gold item is a gross failure of one side: its IoU at least GOLD_MARGIN above the other's,
#: and the worse one below GOLD_WORSE_BELOW (whole images and lifted instances alike).
GOLD_MARGIN = 0.3
GOLD_WORSE_BELOW = 0.5


def gold_winner(iou_a: float, iou_b: float) -> str:
    """'a' or 'b' (the better side) when the pair is a gross failure of the other, else ''."""
    if iou_a - iou_b >= GOLD_MARGIN and iou_b < GOLD_WORSE_BELOW:
        return "a"
    if iou_b - iou_a >= GOLD_MARGIN and iou_a < GOLD_WORSE_BELOW:
        return "b"
    return ""


def gold_count(n_plain: int, share: float) -> int:
    """Gold tasks for `n_plain` non-gold ones so gold is `share` of the pair's tasks (at least
    one when the share is not 0, so a small campaign still scores its annotators)."""
    if share <= 0.0 or n_plain <= 0:
        return 0
    return max(1, round(share * n_plain / (1.0 - share)))


class Stratum(models.TextChoices):
    DISAGREEMENT = "disagreement"
    CONTROL = "control"
    GOLD = "gold"


class Campaign(models.Model):
    name = models.CharField(max_length=200)
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", on_delete=models.PROTECT, related_name="campaigns"
    )
    runs = models.ManyToManyField("evals.EvalRun", related_name="campaigns")
    reference_run = models.ForeignKey(
        "evals.EvalRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Bradley–Terry anchor (= 0): the production run when one is in the campaign",
    )
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.PAIRWISE)
    overlap = models.PositiveSmallIntegerField(default=DEFAULT_OVERLAP, help_text="k per task")
    items_per_pair = models.PositiveIntegerField(
        default=100, help_text="budget: rated items per pair of runs (gold not included)"
    )
    disagreement_share = models.FloatField(
        default=0.5, help_text="share of the budget taken by disagreement-first items"
    )
    gold_ratio = models.FloatField(
        default=DEFAULT_GOLD_SHARE,
        help_text="share of a pair's tasks that are gold: 0, or 0.05-0.15 (reserved first)",
    )
    gold_threshold = models.FloatField(default=0.7, help_text="flag annotators below this")
    min_gold = models.PositiveIntegerField(default=10, help_text="scored gold needed to flag")
    exclude_flagged = models.BooleanField(default=True)
    lease_seconds = models.PositiveIntegerField(default=DEFAULT_LEASE_SECONDS)
    stopping = models.CharField(max_length=16, choices=Stopping.choices, default=Stopping.FIXED)
    vote_budget = models.PositiveIntegerField(
        null=True, blank=True, help_text="until decided: non-gold votes the campaign may spend"
    )
    alpha = models.FloatField(
        default=DEFAULT_ALPHA, help_text="error level of the anytime-valid decision per campaign"
    )
    margin = models.FloatField(
        null=True,
        blank=True,
        help_text="equivalence margin on the win rate (|rate - 0.5| < margin ends a pair)",
    )
    instructions = models.TextField(blank=True)
    status = models.CharField(
        max_length=8, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT, db_index=True
    )
    seed = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name


class Task(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="tasks")
    item = models.ForeignKey("datasets.Item", on_delete=models.CASCADE, related_name="+")
    run_a = models.ForeignKey(
        "evals.EvalRun",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="empty in attributes mode",
    )
    run_b = models.ForeignKey(
        "evals.EvalRun",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="empty in absolute mode",
    )
    stratum = models.CharField(max_length=16, choices=Stratum.choices, db_index=True)
    gold_winner = models.CharField(
        max_length=1, blank=True, choices=[("a", "a"), ("b", "b")], help_text="gold: better run"
    )
    divergence = models.FloatField(
        default=0.0,
        help_text="1 − IoU between the two outputs; instances: |IoU a − IoU b| on the instance",
    )
    instance = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="instances mode: selected ground-truth instance (1-based)"
    )
    instance_a = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="instances mode: run a's matched instance; empty = missed"
    )
    instance_b = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="instances mode: run b's matched instance; empty = missed"
    )
    iou_a = models.FloatField(null=True, blank=True)
    iou_b = models.FloatField(null=True, blank=True)
    order = models.PositiveIntegerField(help_text="serving order, shuffled at creation")
    claim_version = models.PositiveIntegerField(default=0, help_text="bumped to serialise claims")

    class Meta:
        ordering = ["campaign_id", "order"]
        indexes = [models.Index(fields=["campaign", "order"])]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.stratum})"


class Assignment(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="assignments")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rating_assignments"
    )
    token = models.CharField(max_length=32, unique=True, default=new_token)
    left_is_a = models.BooleanField(help_text="side order, randomised per assignment")
    created_at = models.DateTimeField(auto_now_add=True)
    leased_until = models.DateTimeField(db_index=True)
    submitted_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="assignment_once_per_task")
        ]
        indexes = [models.Index(fields=["campaign", "annotator", "submitted_at"])]

    def __str__(self) -> str:
        return f"assignment {self.pk}"


class Outcome(models.TextChoices):
    """A pairwise choice in run identity (task.run_a / task.run_b)."""

    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"


SHOWN_CHOICES = ("left", "right", "tie", "both_bad")
#: Members of this Django group are scripted raters, not people (the demo seeds them): every page
#: and export that shows their ratings labels them "simulated", as synthetic attribute labels are.
SIMULATED_GROUP = "simulated"


class Rating(models.Model):
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="rating")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="ratings")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="ratings")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ratings"
    )
    shown_choice = models.CharField(
        max_length=8, blank=True, choices=[(c, c) for c in SHOWN_CHOICES]
    )
    outcome = models.CharField(max_length=8, blank=True, choices=Outcome.choices)
    score = models.PositiveSmallIntegerField(null=True, blank=True, help_text="absolute mode 1–5")
    skin_tone = models.CharField(
        max_length=16,
        blank=True,
        help_text="attributes mode: Monk 1–10, not_applicable (no person) or unknown (can't tell)",
    )
    perceived_gender = models.CharField(max_length=16, blank=True, help_text="attributes mode")
    reasons = models.JSONField(default=list, blank=True)
    seconds = models.FloatField(default=0.0, help_text="time on the task as the page measured it")
    late = models.BooleanField(default=False, help_text="submitted after the lease expired")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"rating {self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.shown_choice and not self.outcome:
            self.outcome = outcome_of(self.shown_choice, left_is_a=self.assignment.left_is_a)
        super().save(*args, **kwargs)


class CampaignSnapshot(models.Model):
    """The stored campaign report: computed by `ratings.services.reports`, read by every page.

    One row per campaign. Rating submissions mark it `dirty` (a conditional UPDATE, so a burst of
    ratings costs one flag write each and schedules one recompute); the debounced job recomputes
    the payload from SQL aggregates and clears the flag only if no rating arrived meanwhile
    (`ratings_count` / `last_rating_id` say exactly which ratings the payload covers). Pages and
    exports read `payload` as it is; its shape is documented in `ratings.services.reports`.
    """

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="snapshot")
    computed_at = models.DateTimeField(null=True, blank=True)
    ratings_count = models.PositiveIntegerField(default=0, help_text="ratings the payload covers")
    last_rating_id = models.BigIntegerField(
        default=0, help_text="highest rating id the payload covers"
    )
    payload = models.JSONField(default=dict, blank=True)
    agreement_codes = models.BinaryField(
        default=b"",
        blank=True,
        help_text="per decided task and metric, whether the metric sides with people "
        "(pipelines.stats.metric_agreement.codes_pack); pooled per family, never shown",
    )
    dirty = models.BooleanField(
        default=True, db_index=True, help_text="ratings arrived after the payload was computed"
    )
    dirty_since = models.DateTimeField(null=True, blank=True)
    generation = models.PositiveBigIntegerField(
        default=0, help_text="bumped on mark-dirty; a recompute clears dirty only if unchanged"
    )
    seconds = models.FloatField(default=0.0, help_text="time the last recompute took")

    def __str__(self) -> str:
        return f"snapshot of campaign {self.campaign_id}"


class PairState(models.Model):
    """Each pair's sequential decision and routing priority, as the last snapshot computed them.

    Written only by the snapshot job (`ratings.services.sequential`), in the transaction that
    stores the payload, and read by task assignment: a lookup on a few rows instead of the
    payload JSON on every claim. Under concurrency the state may trail the newest ratings by one
    debounce period: a pair that just decided may get the few votes leased meanwhile, which the
    sequence keeps valid (its decision holds at any stopping time, later votes included).
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="pair_states")
    run_a = models.ForeignKey("evals.EvalRun", on_delete=models.CASCADE, related_name="+")
    run_b = models.ForeignKey("evals.EvalRun", on_delete=models.CASCADE, related_name="+")
    decision = models.CharField(
        max_length=12, blank=True, help_text="candidate|baseline|equivalent; empty = still open"
    )
    votes = models.PositiveIntegerField(default=0)
    stopped_at = models.PositiveIntegerField(null=True, blank=True)
    priority = models.FloatField(default=0.0, help_text="expected interval shrink of one vote")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "run_a", "run_b"], name="pair_state_once")
        ]

    def __str__(self) -> str:
        return f"pair {self.run_a_id}/{self.run_b_id} of campaign {self.campaign_id}"


def outcome_of(shown: str, *, left_is_a: bool) -> str:
    """Map the choice as shown on screen to run identity."""
    if shown == "left":
        return Outcome.A if left_is_a else Outcome.B
    if shown == "right":
        return Outcome.B if left_is_a else Outcome.A
    if shown in ("tie", "both_bad"):
        return shown
    raise ValueError(f"unknown choice {shown!r}; expected one of {SHOWN_CHOICES}")
