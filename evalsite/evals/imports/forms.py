"""The import form (web door): a zip of `<stem>.png` alphas plus what the importer states."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile

from evalsite.core.formfields import WholeNumberField
from evalsite.core.text import NOTE_MAX
from evalsite.datasets.models import DatasetVersion
from evalsite.evals.forms import SetVersionChoice, VersionChoice
from models.forms import check_upload_size
from models.models import ModelVersion, VersionStatus


class ImportForm(forms.Form):
    model_version = VersionChoice(
        queryset=ModelVersion.objects.filter(status=VersionStatus.READY)
        .select_related("family")
        .prefetch_related("aliases"),
        label="Model version",
        help_text="any ready version: an external one, or e.g. a Core ML child run on a device",
    )
    dataset_version = SetVersionChoice(
        queryset=DatasetVersion.objects.select_related("dataset"),
        label="Set version",
        error_messages={"invalid_choice": "That set version no longer exists; choose another."},
    )
    file = forms.FileField(
        label="Predictions (.zip)",
        help_text="one 8-bit greyscale <stem>.png per image, as `python -m pipelines.predict "
        "--out` writes them (zip the folder or its contents)",
    )
    latency = forms.FileField(
        required=False,
        label="Latency CSV (optional)",
        help_text="image,ms[,preprocess_ms,model_ms,postprocess_ms] measured on the device",
    )
    device = forms.CharField(required=False, max_length=128, help_text="e.g. iPhone 15 Pro")
    os = forms.CharField(required=False, max_length=128, label="OS", help_text="e.g. iOS 18.1")
    runtime_label = forms.CharField(
        required=False, max_length=128, label="Runtime", help_text="e.g. Core ML 8"
    )
    compute_units = forms.CharField(
        required=False, max_length=64, help_text="e.g. cpuAndNeuralEngine"
    )
    provenance = forms.CharField(
        required=False,
        max_length=NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="who produced these predictions, how",
    )
    parity_run = WholeNumberField(
        required=False,
        min_value=1,
        help_text="run # to compare the alphas with (default: the parent version's worker run)",
    )
    ignore_extra = forms.BooleanField(
        required=False, help_text="accept PNGs that match no image of the set"
    )

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        check_upload_size(upload)
        return upload

    def metadata(self) -> dict[str, Any]:
        data = self.cleaned_data
        keys = ("device", "os", "runtime_label", "compute_units", "provenance", "ignore_extra")
        return {k: data[k] for k in keys}
