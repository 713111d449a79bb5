"""The start-a-run form: version, set version, runtime and post-processing options."""

from __future__ import annotations

from typing import Any

from django import forms

from evalsite.core.formfields import DecimalNumberField
from evalsite.datasets.models import DatasetVersion
from evalsite.evals.services.runs import ALL_RUNTIMES, DEFAULT_MIN_INSTANCE_AREA
from models.models import ModelFormat, ModelVersion, VersionStatus


class VersionChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        aliases = ", ".join(a.name for a in obj.aliases.all())
        return f"{obj.ref} ({obj.get_format_display()})" + (f" [{aliases}]" if aliases else "")


class SetVersionChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.spec} ({obj.item_count} items)"


class RunStartForm(forms.Form):
    model_version = VersionChoice(
        queryset=ModelVersion.objects.filter(status=VersionStatus.READY)
        .exclude(format=ModelFormat.EXTERNAL)  # predictions imported, never run here
        .select_related("family")
        .prefetch_related("aliases"),
        label="Model version",
    )
    dataset_version = SetVersionChoice(
        queryset=DatasetVersion.objects.select_related("dataset"), label="Set version"
    )
    runtime = forms.ChoiceField(
        choices=[(r, r) for r in ALL_RUNTIMES],
        initial="auto",
        help_text="auto: the worker picks (MPS, then CUDA, then CPU; ONNX picks its provider)",
    )
    upsample = forms.ChoiceField(
        choices=[("guided", "guided filter (default)"), ("bilinear", "bilinear")],
        initial="guided",
    )
    gate = forms.BooleanField(
        required=False, initial=True, help_text="show 'no subject' when confidence is low"
    )
    gate_threshold = DecimalNumberField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        help_text="leave empty for the model spec's gate_threshold",
    )
    min_instance_area = DecimalNumberField(
        initial=DEFAULT_MIN_INSTANCE_AREA,
        min_value=0.0,
        max_value=0.99,
        help_text="smallest instance as a share of the image",
    )
    parity = forms.BooleanField(
        required=False,
        help_text="also run the version's ONNX / Core ML conversions and compare outputs",
    )

    def postprocess(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "upsample": data["upsample"],
            "gate": bool(data["gate"]),
            "gate_threshold": data.get("gate_threshold"),
            "min_instance_area": data["min_instance_area"],
        }
