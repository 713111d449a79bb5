"""Forms of the registry pages: parse and check input, then views call one service."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from evalsite.core.names import NameFormField
from evalsite.core.text import NOTE_MAX, REASON_MAX, text_problem


def max_upload_bytes() -> int:
    return int(settings.MAX_UPLOAD_MB) * 1024 * 1024


def check_upload_size(upload: UploadedFile, field: str = "file") -> None:
    """The same limit and message for the web form and the API (the JS checks it first)."""
    if upload.size is not None and upload.size > max_upload_bytes():
        raise forms.ValidationError(
            f"{upload.name} is {upload.size / 2**20:.1f} MB; the upload limit is "
            f"{settings.MAX_UPLOAD_MB} MB (MAX_UPLOAD_MB). Use `python manage.py register_model` "
            "on the server for larger files."
        )


def refuse_non_finite(name: str) -> float:
    """json.loads(parse_constant=...): NaN/Infinity are not JSON and no database stores them."""
    raise ValueError(f"{name} is not valid JSON; spec numbers must be finite")


def parse_spec_text(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text, parse_constant=refuse_non_finite)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            f"The spec is not valid JSON ({exc.msg} at line {exc.lineno})."
        ) from exc
    except ValueError as exc:
        raise forms.ValidationError(f"The spec is not valid JSON: {exc}.") from exc
    if not isinstance(value, dict):
        raise forms.ValidationError("The spec must be a JSON object (see the model-spec contract).")
    return value


class UploadForm(forms.Form):
    family = NameFormField(kind="family", help_text="existing or new, e.g. subject-lift")
    version = NameFormField(kind="version", help_text="starts with a digit, e.g. 1.2.0")
    file = forms.FileField(help_text=".pt2, TorchScript, .onnx, .mlmodel or zipped .mlpackage")
    spec_file = forms.FileField(required=False, label="Spec (.spec.json)")
    spec_text = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6}), label="…or paste the spec JSON"
    )
    card_file = forms.FileField(required=False, label="Model card (optional, .md)")
    parent = forms.CharField(required=False, max_length=64, help_text="lineage: parent version")
    notes = forms.CharField(
        required=False, max_length=NOTE_MAX, widget=forms.Textarea(attrs={"rows": 2})
    )

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        check_upload_size(upload)
        return upload

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or self.cleaned_data
        spec_file = data.get("spec_file")
        text = data.get("spec_text") or ""
        if spec_file:
            text = spec_file.read().decode("utf-8", errors="replace")
        if not text.strip():
            self.add_error("spec_file", "Attach the model's .spec.json or paste the spec JSON.")
            return data
        try:
            data["spec"] = parse_spec_text(text)
        except forms.ValidationError as exc:
            self.add_error("spec_text", exc)
        card = data.get("card_file")
        data["card"] = card.read().decode("utf-8", errors="replace") if card else ""
        too_long = text_problem("card", data["card"])
        if too_long:
            self.add_error("card_file", too_long)
        return data


class ExternalVersionForm(forms.Form):
    """A version with no runnable file: its runs are imported predictions."""

    family = NameFormField(kind="family", help_text="existing or new, e.g. vendor-cutout")
    version = NameFormField(kind="version", help_text="starts with a digit, e.g. 2024.06")
    parent = forms.CharField(required=False, max_length=64, help_text="lineage: parent version")
    provenance = forms.CharField(
        required=False,
        max_length=NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="where the model and its predictions come from (who, which app/API, when)",
    )
    notes = forms.CharField(
        required=False, max_length=NOTE_MAX, widget=forms.Textarea(attrs={"rows": 2})
    )


class AliasMoveForm(forms.Form):
    name = NameFormField(kind="alias", label="Alias")
    version = forms.ChoiceField(label="Version")
    reason = forms.CharField(widget=forms.TextInput(attrs={"size": 40}), max_length=REASON_MAX)

    def __init__(self, *args: Any, versions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["version"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(v, v) for v in versions]


class ConvertForm(forms.Form):
    target = forms.ChoiceField(choices=[("onnx", "ONNX"), ("coreml", "Core ML")])
