from __future__ import annotations

import json
from typing import Any

from django import forms

from evalsite.core.formfields import DecimalNumberField, WholeNumberField
from evalsite.core.text import REASON_MAX
from evalsite.releases.models import DecisionKind, GateConfig
from pipelines.parse import InvalidJSON, loads_json


class ReportForm(forms.Form):
    candidate = forms.CharField(
        help_text="FAMILY:VERSION or FAMILY:ALIAS, e.g. subject-lift:candidate"
    )
    baseline = forms.CharField(
        required=False, help_text="default: the candidate family's production alias"
    )
    dataset = forms.CharField(
        label="Set versions",
        help_text="NAME or NAME:HASH-PREFIX; several for a suite, separated by commas (the first "
        "is the quality set, e.g. a real test set, then a set with person attributes)",
    )
    campaign = WholeNumberField(
        required=False, min_value=1, help_text="default: newest campaign over both runs"
    )


def split_sets(raw: str) -> list[str]:
    return [x.strip() for x in raw.replace("\n", ",").split(",") if x.strip()]


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=DecisionKind.choices)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=REASON_MAX)
    move_production = forms.BooleanField(
        required=False, label="Move production to the candidate (approve only)"
    )
    override = forms.CharField(
        required=False,
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Override reason",
        help_text="needed to approve a verdict other than pass: why approve anyway",
    )


class GateConfigForm(forms.ModelForm):  # type: ignore[type-arg]
    """The gates page's form: parses the numbers (ASCII, finite); whether the settings can be
    used is `gate_config_update`'s one check (pipelines.release.gate_settings)."""

    metric_margins = forms.CharField(
        help_text='JSON: metric -> non-inferiority margin, e.g. {"iou": 0.01, "mae": 0.01}'
    )

    class Meta:
        model = GateConfig
        fields = (
            "metric_margins", "improvement_margin", "fairness_margin", "min_group_size",
            "latency_budget_ms", "min_win_rate", "min_votes", "alpha",
        )  # fmt: skip
        field_classes = {
            "improvement_margin": DecimalNumberField, "fairness_margin": DecimalNumberField,
            "latency_budget_ms": DecimalNumberField, "min_win_rate": DecimalNumberField,
            "alpha": DecimalNumberField, "min_group_size": WholeNumberField,
            "min_votes": WholeNumberField,
        }  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance and self.instance.pk:
            self.initial["metric_margins"] = json.dumps(self.instance.metric_margins)

    def clean_metric_margins(self) -> dict[str, float]:
        raw = self.cleaned_data["metric_margins"]
        try:
            value = loads_json(raw, max_depth=2, max_bytes=10_000)  # finite numbers only
        except InvalidJSON as exc:
            raise forms.ValidationError(f"metric_margins: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError('metric_margins must be an object like {"iou": 0.01}')
        return value
