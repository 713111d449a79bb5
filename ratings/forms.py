"""Campaign creation form (researchers and managers)."""

from __future__ import annotations

from typing import Any

from django import forms

from evalsite.datasets.models import DatasetVersion
from evalsite.evals.models import EvalRun, RunStatus
from ratings.models import DEFAULT_OVERLAP, Mode


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    dataset_version = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.select_related("dataset"), label="Set version"
    )
    runs = forms.ModelMultipleChoiceField(
        queryset=EvalRun.objects.filter(status=RunStatus.DONE).select_related(
            "model_version__family", "dataset_version__dataset"
        ),
        help_text="two or more finished runs on the chosen set version",
    )
    mode = forms.ChoiceField(choices=Mode.choices, initial=Mode.PAIRWISE)
    overlap = forms.IntegerField(min_value=1, max_value=20, initial=DEFAULT_OVERLAP, label="k")
    items_per_pair = forms.IntegerField(min_value=1, initial=100)
    disagreement_share = forms.FloatField(min_value=0, max_value=1, initial=0.5)
    gold_ratio = forms.FloatField(min_value=0, max_value=1, initial=0.1)
    instructions = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    open_now = forms.BooleanField(required=False, initial=True, label="Open for annotators now")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["runs"].label_from_instance = lambda r: (
            f"run #{r.pk}: {r.model_version.family.name} {r.model_version.version} on "
            f"{r.dataset_version.spec}"
        )
