"""Stored fairness reports: one per (run, attribute revision, settings).

Why stored: the bootstrap over every group takes a moment, and the run page, the CLI, the REST
endpoint and the leaderboard must show the same numbers; a job computes a report when a run on a
set with person attributes finishes and again when the set's attributes get a new revision, and
every page only reads. `data` is the fairness JSON of docs/contracts/reports.md; `summary` is
its leaderboard-ready part (worst group and largest gap per metric), kept as its own column so a
leaderboard reads it without loading the groups.
"""

from __future__ import annotations

from django.db import models


class FairnessReport(models.Model):
    run = models.ForeignKey("evals.EvalRun", on_delete=models.CASCADE, related_name="+")
    attribute_revision = models.ForeignKey(
        "datasets.AttributeRevision", on_delete=models.CASCADE, related_name="+"
    )
    settings = models.JSONField(help_text="min_group_size, margin, alpha, rounds, tone groups")
    settings_key = models.CharField(max_length=200, help_text="canonical form of `settings`")
    is_default = models.BooleanField(
        default=False, help_text="computed with the set's default settings (what pages show)"
    )
    data = models.JSONField(help_text="fairness JSON (shared/contracts/reports.md)")
    summary = models.JSONField(default=dict, help_text="worst group and largest gap per metric")
    flag_count = models.PositiveIntegerField(default=0)
    synthetic_labels = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "attribute_revision", "settings_key"], name="fairness_unique_report"
            )
        ]

    def __str__(self) -> str:
        return f"fairness of run #{self.run_id} (attributes r{self.attribute_revision.number})"
