"""Upload form: the name and the zip are checked here so the worker only sees plausible input."""

from __future__ import annotations

from django import forms
from django.conf import settings

from evalsite.core.text import NOTE_MAX
from evalsite.datasets import selectors


class UploadForm(forms.Form):
    # strip=False: "pascal-s " is refused with its reason, never trimmed into the existing set.
    name = forms.CharField(
        max_length=100, strip=False, help_text="an existing name adds a version to that set"
    )
    archive = forms.FileField(
        help_text="a .zip holding images/ and masks/ (matched by stem), "
        "optionally manifest.csv and README.md"
    )
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=NOTE_MAX
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        problem = selectors.set_name_problem(name)
        if problem:
            raise forms.ValidationError(problem)
        return name

    def clean_archive(self) -> object:
        archive = self.cleaned_data["archive"]
        if not (archive.name or "").lower().endswith(".zip"):
            raise forms.ValidationError(f"{archive.name}: upload a .zip archive")
        limit = settings.MAX_UPLOAD_MB * 2**20
        if archive.size > limit:
            raise forms.ValidationError(
                f"{archive.name} is {archive.size / 2**20:.0f} MB; the limit is "
                f"{settings.MAX_UPLOAD_MB} MB (MAX_UPLOAD_MB) — use the import_dataset command"
            )
        return archive
