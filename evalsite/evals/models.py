"""Evaluation runs: one model version × one set version × runtime × post-processing config.

Why the shape: a run is split into chunks on the core job primitive (the chunk rows are its work
units; there is no separate EvalChunk table), and every per-image outcome is an `ItemResult`
unique on (run, item) so a chunk retried after a crash overwrites instead of duplicating.
Progress is read from database counts of these rows, never from the broker.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from pipelines.metrics.registry import stored_columns

#: Per-image metric columns stored as floats so the per-image browser can sort on them in SQL (the
#: registry in pipelines.metrics.registry says which; these are its per-image keys). They hold the
#: GATED output (what the user gets); the ungated numbers live in `ItemResult.ungated`.
SORTABLE_METRICS = stored_columns()


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATUSES = frozenset({RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELLED})


class RunSource(models.TextChoices):
    WORKER = "worker", "run on a platform worker"
    IMPORTED = "imported", "predictions imported"


class ResultStatus(models.TextChoices):
    OK = "ok"
    FAILED = "failed"


class EvalRun(models.Model):
    model_version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="eval_runs"
    )
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", on_delete=models.PROTECT, related_name="eval_runs"
    )
    attribute_revision = models.ForeignKey(
        "datasets.AttributeRevision",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="attribute labels the slices and later fairness reports of this run used",
    )
    runtime = models.CharField(max_length=32, default="auto", help_text="as requested")
    device = models.CharField(
        max_length=128, blank=True, help_text="as resolved by the worker, or as stated on import"
    )
    source = models.CharField(
        max_length=16, choices=RunSource.choices, default=RunSource.WORKER, db_index=True
    )
    # Imported runs only (blank on worker runs): what the importer states about where the alphas
    # were predicted. `created_by` is the person who imported.
    os = models.CharField(max_length=128, blank=True, help_text="e.g. iOS 18.1")
    runtime_label = models.CharField(max_length=128, blank=True, help_text="e.g. Core ML 8")
    compute_units = models.CharField(max_length=64, blank=True, help_text="e.g. cpuAndNeuralEngine")
    provenance = models.TextField(blank=True, help_text="who produced the predictions, how")
    import_name = models.CharField(
        max_length=255, blank=True, help_text="imported folder name or uploaded file name"
    )
    has_latency = models.BooleanField(
        default=True, help_text="False: no latency was measured (imported without a latency CSV)"
    )
    queue = models.CharField(max_length=32)
    postprocess = models.JSONField(default=dict, blank=True)
    config_hash = models.CharField(max_length=64, db_index=True)
    is_default_config = models.BooleanField(
        default=True, help_text="default runtime and post-processing: eligible as primary run"
    )
    parity_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="parity_runs",
        help_text="run of the parent version this (converted) run is checked against",
    )
    reproduce_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reproductions",
        help_text="the run this one re-ran with the same configuration to check it repeats",
    )
    output_digest = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text='sha256 over the sorted "item:alpha sha256" lines of its items (set when done)',
    )
    reproduction = models.JSONField(
        default=dict,
        blank=True,
        help_text="reproductions only: per-image comparison with `reproduce_of` (when done)",
    )
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    chunk_size = models.PositiveIntegerField(default=16)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    environment = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    curves = models.JSONField(default=dict, blank=True)
    artefacts_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["model_version", "dataset_version", "status"])]

    def __str__(self) -> str:
        return f"run #{self.pk}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("evals:detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class ItemResult(models.Model):
    run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="results")
    item = models.ForeignKey("datasets.Item", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=ResultStatus.choices, db_index=True)
    error = models.TextField(blank=True)
    iou = models.FloatField(null=True, blank=True)
    precision = models.FloatField(null=True, blank=True)
    recall = models.FloatField(null=True, blank=True)
    boundary_f = models.FloatField(null=True, blank=True)
    mae = models.FloatField(null=True, blank=True)
    s_measure = models.FloatField(null=True, blank=True)
    max_f = models.FloatField(null=True, blank=True)
    weighted_f = models.FloatField(null=True, blank=True)
    max_e = models.FloatField(null=True, blank=True)
    boundary_iou = models.FloatField(null=True, blank=True)
    sad = models.FloatField(null=True, blank=True)
    mse_alpha = models.FloatField(null=True, blank=True)
    grad = models.FloatField(null=True, blank=True)
    conn = models.FloatField(null=True, blank=True)
    # Items with instance masks only (None elsewhere): pipelines.metrics.instances.item_values.
    instance_iou = models.FloatField(null=True, blank=True)
    instance_boundary_iou = models.FloatField(null=True, blank=True)
    instance_recall = models.FloatField(null=True, blank=True)
    instance_count_ok = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="every gated metric")
    ungated = models.JSONField(default=dict, blank=True, help_text="metrics of the ungated alpha")
    instance_scores = models.JSONField(default=dict, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    gated = models.BooleanField(default=False)
    instance_count = models.PositiveIntegerField(default=0)
    latency = models.JSONField(default=dict, blank=True, help_text="ms per stage")
    artefacts = models.JSONField(default=dict, blank=True, help_text="MEDIA_ROOT-relative paths")
    alpha_sha256 = models.CharField(
        max_length=64, blank=True, help_text="sha256 of the stored (gated) alpha PNG's bytes"
    )
    attempt = models.PositiveIntegerField(default=1, help_text="chunk attempt that wrote the row")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run_id", "item_id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "item"], name="itemresult_unique_run_item")
        ]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"run {self.run_id} item {self.item_id} ({self.status})"

    @property
    def has_alpha(self) -> bool:
        """Whether the result stored an alpha PNG (a failed item, or a purged run, has none)."""
        return bool((self.artefacts or {}).get("alpha"))


class ComparisonStatus(models.TextChoices):
    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"


class RunComparison(models.Model):
    """Paired intervals of two runs on one set version, computed once by the `evals.compare` job.

    Keyed by both runs and their output digests: the numbers belong to exactly these outputs, and
    the compare page shows them only while both digests still match (a run's outputs are fixed
    once it is done, so in practice a row never goes stale; a re-scored run gets a new row).
    ``payload``: ``{"n", "rounds", "level", "seed", "dropped", "metrics": {name: {"n",
    "baseline", "candidate", "delta", "ci", "improved", "regressed", "lower_is_better",
    "excludes_zero"}}, "fairness": per-group paired deltas}`` — the metrics from the same
    bootstrap as the release report (one draw of items shared by both runs and every metric,
    `paired_deltas`); the fairness section is the typed `pipelines.payloads.fairness.
    PairedFairness` (`to_dict()`), read through `evalsite.evals.selectors.run_comparison_fairness`.
    """

    baseline = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="+")
    candidate = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="+")
    baseline_digest = models.CharField(max_length=64)
    candidate_digest = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=ComparisonStatus.choices, default=ComparisonStatus.QUEUED
    )
    job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["baseline", "candidate", "baseline_digest", "candidate_digest"],
                name="runcomparison_unique_outputs",
            )
        ]

    def __str__(self) -> str:
        return f"run #{self.candidate_id} vs #{self.baseline_id} ({self.status})"
