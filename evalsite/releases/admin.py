from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from evalsite.releases.models import GateConfig, LeaderboardRow, ReleaseDecision, ReleaseReport
from evalsite.releases.services.decisions import GATE_FIELDS
from pipelines.release.gate_settings import gate_settings_problems


class GateConfigAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    """The admin's door runs the same check as the gates page (gate_config_update)."""

    class Meta:
        model = GateConfig
        fields = ("family", *GATE_FIELDS)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        values = {k: data[k] for k in GATE_FIELDS if k in data}
        for problem in gate_settings_problems(values):
            self.add_error(None, problem)
        return data


@admin.register(GateConfig)
class GateConfigAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = GateConfigAdminForm
    list_display = ("family", "metric_margins", "fairness_margin", "latency_budget_ms",
                    "min_win_rate", "min_votes", "alpha", "updated_at")  # fmt: skip


class ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    """Reports and decisions are immutable: the admin shows them, never edits or deletes."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ReleaseReport)
class ReleaseReportAdmin(ReadOnly):
    list_display = ("pk", "candidate", "baseline", "dataset_version", "status", "verdict",
                    "created_at")  # fmt: skip
    list_filter = ("status", "verdict")


@admin.register(ReleaseDecision)
class ReleaseDecisionAdmin(ReadOnly):
    list_display = ("pk", "report", "decision", "verdict", "override", "decided_by", "decided_at")


@admin.register(LeaderboardRow)
class LeaderboardRowAdmin(ReadOnly):
    list_display = ("family", "version", "dataset_version", "runtime", "iou", "refreshed_at")
    list_filter = ("family", "runtime")
