"""Release data: per-family gate settings, immutable release reports and decisions, and the stored
leaderboard.

Why stored rows: the leaderboard is the landing page; it reads `LeaderboardRow`s written by
`leaderboard_refresh` whenever a run finishes, a campaign snapshot or an attribute revision changes
(detected by a fingerprint, services/leaderboard.py), never aggregated per request. A report's JSON
(`payload`) is written once by its job and never changed; decisions are append-only.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.db import models

from pipelines.release.gates import GateSettings


def default_margins() -> dict[str, float]:
    return dict(GateSettings().metric_margins)


class GateConfig(models.Model):
    """The release gates of one model family (defaults = `pipelines.release.GateSettings`)."""

    family = models.OneToOneField(
        "registry.ModelFamily", on_delete=models.CASCADE, related_name="gate_config"
    )
    metric_margins = models.JSONField(
        default=default_margins,
        help_text='non-inferiority margin per metric, e.g. {"iou": 0.01, "mae": 0.01}',
    )
    improvement_margin = models.FloatField(
        default=0.01, help_text="an image counts as improved/regressed beyond this change"
    )
    fairness_margin = models.FloatField(default=0.02)
    min_group_size = models.PositiveIntegerField(default=20)
    latency_budget_ms = models.FloatField(
        null=True,
        blank=True,
        help_text="candidate tail latency (p99 from 100 images, else max); empty = none",
    )
    min_win_rate = models.FloatField(
        null=True, blank=True, default=0.5, help_text="empty = no crowd win-rate gate"
    )
    min_votes = models.PositiveIntegerField(
        default=50, help_text="control votes needed for crowd numbers (0 = no crowd gates)"
    )
    alpha = models.FloatField(default=0.025, help_text="family-wise one-sided level (Holm)")
    updated_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"gates of {self.family}"

    def settings(self) -> GateSettings:
        return gate_settings_of(self)


def gate_settings_of(config: GateConfig | None) -> GateSettings:
    if config is None:
        return GateSettings()
    return GateSettings(
        metric_margins={k: float(v) for k, v in (config.metric_margins or {}).items()},
        improvement_margin=config.improvement_margin,
        fairness_margin=config.fairness_margin,
        min_group_size=config.min_group_size,
        latency_budget_ms=config.latency_budget_ms,
        min_win_rate=config.min_win_rate,
        min_votes=config.min_votes,
        alpha=config.alpha,
    )


class ReportStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Verdict(models.TextChoices):
    PASS = "pass"
    FAIL = "fail"
    INSUFFICIENT = "insufficient"


class ReleaseReport(models.Model):
    candidate = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="+"
    )
    baseline = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="+"
    )
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", on_delete=models.PROTECT, related_name="+"
    )
    candidate_run = models.ForeignKey("evals.EvalRun", on_delete=models.PROTECT, related_name="+")
    baseline_run = models.ForeignKey("evals.EvalRun", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(
        "ratings.Campaign", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=ReportStatus.choices, default=ReportStatus.QUEUED, db_index=True
    )
    verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True)
    settings = models.JSONField(default=dict, help_text="gate settings the report used")
    inputs = models.JSONField(
        default=dict,
        blank=True,
        help_text="the exact evidence the report read (runs, output digests, attribute revisions, "
        "campaign snapshot generation, gate settings); written with the payload",
    )
    payload = models.JSONField(default=dict, blank=True, help_text="the report JSON (immutable)")
    error = models.TextField(blank=True)
    job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"release report #{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError(
                "a release report is immutable; its job writes it once (release_report_build)"
            )
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("releases:report", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in (ReportStatus.DONE, ReportStatus.FAILED)


class ReportSet(models.Model):
    """One set version of a report's suite with the two primary runs it reads (position 0 is the
    quality set, shown first; `ReleaseReport.dataset_version` mirrors it)."""

    report = models.ForeignKey(ReleaseReport, on_delete=models.CASCADE, related_name="sets")
    position = models.PositiveSmallIntegerField()
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", on_delete=models.PROTECT, related_name="+"
    )
    candidate_run = models.ForeignKey("evals.EvalRun", on_delete=models.PROTECT, related_name="+")
    baseline_run = models.ForeignKey("evals.EvalRun", on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["report_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["report", "position"], name="report_set_position"),
            models.UniqueConstraint(
                fields=["report", "dataset_version"], name="report_set_unique_version"
            ),
        ]

    def __str__(self) -> str:
        return f"set {self.position} of report #{self.report_id}"


class DecisionKind(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"
    NEEDS_MORE_DATA = "needs_more_data", "needs more data"


class ReleaseDecision(models.Model):
    """Append-only, one per report: who decided what on which report, when and why (and the alias
    it moved). Concurrent submits race on the unique constraint, so exactly one wins.
    `duplicate_before_unique` marks the extra decisions recorded before that rule existed: kept
    for the history, outside the constraint."""

    report = models.ForeignKey(ReleaseReport, on_delete=models.PROTECT, related_name="decisions")
    decision = models.CharField(max_length=16, choices=DecisionKind.choices)
    reason = models.TextField()
    override = models.TextField(
        blank=True, help_text="why an approval went against a verdict other than pass"
    )
    verdict = models.CharField(
        max_length=16, blank=True, help_text="the report's verdict when the decision was made"
    )
    inputs = models.JSONField(
        default=dict, blank=True, help_text="the report's recorded inputs the decision was made on"
    )
    duplicate_before_unique = models.BooleanField(default=False)
    decided_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(auto_now_add=True, db_index=True)
    alias_move = models.ForeignKey(
        "registry.AliasMove", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="the production move made in the same transaction (approve only)",
    )  # fmt: skip

    class Meta:
        ordering = ["-decided_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["report"],
                condition=models.Q(duplicate_before_unique=False),
                name="one_decision_per_report",
            )
        ]

    def __str__(self) -> str:
        return f"{self.decision} on report #{self.report_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("a release decision is immutable; record a new decision instead")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("a release decision is immutable and cannot be deleted")


class LeaderboardRow(models.Model):
    """One model version's primary finished run on one set version, with stored aggregates."""

    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", on_delete=models.CASCADE, related_name="+"
    )
    model_version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.CASCADE, related_name="+"
    )
    run = models.ForeignKey("evals.EvalRun", on_delete=models.CASCADE, related_name="+")
    family = models.CharField(max_length=100, db_index=True)
    version = models.CharField(max_length=64)
    version_created_at = models.DateTimeField()
    runtime = models.CharField(max_length=128, db_index=True)
    device = models.CharField(max_length=128, blank=True)
    source = models.CharField(max_length=16, default="worker")
    aliases = models.JSONField(default=list, blank=True)
    # One column per leaderboard metric of pipelines.metrics.registry (sortable in SQL); each is
    # a mean over images, so `intervals` holds its bootstrap interval.
    iou = models.FloatField(null=True)
    precision = models.FloatField(null=True)
    recall = models.FloatField(null=True)
    image_max_f = models.FloatField(null=True)
    mae = models.FloatField(null=True)
    s_measure = models.FloatField(null=True)
    boundary_f = models.FloatField(null=True)
    intervals = models.JSONField(
        default=dict, blank=True,
        help_text='{"n", "level", "rounds", "metrics": {name: [low, high]}}: bootstrap over images',
    )  # fmt: skip
    rank = models.PositiveIntegerField(null=True, help_text="1 = best on the primary metric")
    rank_low = models.PositiveIntegerField(null=True)
    rank_high = models.PositiveIntegerField(null=True)
    rank_items = models.PositiveIntegerField(
        null=True, help_text="images every ranked version of the set version scored"
    )
    latency_p50 = models.FloatField(null=True)
    # The tail statistic of `pipelines.stats.latency`: the p99 from 100 measurements, below that
    # the maximum (`latency_tail` says which; the column keeps its name for sorting links).
    latency_p99 = models.FloatField(null=True)
    latency_n = models.IntegerField(null=True)
    latency_tail = models.CharField(max_length=8, blank=True, default="")
    gated_no_subject = models.FloatField(null=True)
    gated_subject = models.FloatField(null=True)
    worst_group = models.CharField(max_length=64, blank=True)
    worst_group_iou = models.FloatField(null=True)
    fairness_gap = models.FloatField(null=True)
    crowd = models.JSONField(
        default=dict, blank=True, help_text="strength ± CI, win rate vs production, or a note"
    )
    finished_at = models.DateTimeField(null=True)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["dataset_version_id", "-iou"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset_version", "model_version"], name="leaderboard_unique_row"
            )
        ]
        indexes = [models.Index(fields=["dataset_version", "family"])]

    def __str__(self) -> str:
        return f"{self.family}:{self.version} on set version {self.dataset_version_id}"


class LeaderboardState(models.Model):
    """Singleton: the fingerprint of the inputs the stored rows were computed from."""

    key = models.CharField(max_length=16, unique=True, default="default")
    fingerprint = models.CharField(max_length=200, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(default=0.0)
    people_metrics = models.JSONField(
        default=dict, blank=True,
        help_text="per family: the leaderboard metric that best predicts people's choices "
        "(ratings.services.metric_agreement over the family's campaign snapshots)",
    )  # fmt: skip

    def __str__(self) -> str:
        return f"leaderboard state ({self.fingerprint})"


class GateStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ReleaseGate(models.Model):
    """One "evaluate and gate" request of a CI job: candidate (registered, validated), runs on
    each set of the suite, then a release report whose verdict answers it (job `releases.gate`).

    `key` is the client's idempotency key: one gate per (user, key), so a retried CI job gets the
    same gate; `fingerprint` (of the request's inputs) tells a retry from a different request.
    """

    created_by = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=200, blank=True)
    fingerprint = models.CharField(max_length=64)
    candidate = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT,
                                  related_name="+")  # fmt: skip
    baseline_ref = models.CharField(max_length=200, blank=True)
    datasets = models.JSONField(default=list)  # the suite's set-version specs, in order
    status = models.CharField(max_length=16, choices=GateStatus.choices,
                              default=GateStatus.QUEUED)  # fmt: skip
    step = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    runs = models.JSONField(default=list)  # [{"dataset", "side", "run", "reused"}]
    report = models.ForeignKey(ReleaseReport, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")  # fmt: skip
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="+")  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "key"], condition=~models.Q(key=""), name="gate_key_once"
            )
        ]

    def __str__(self) -> str:
        return f"gate #{self.pk}"
