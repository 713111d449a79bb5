"""API input parsing and output shapes; the same upload limit and spec parsing as the web form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from rest_framework import serializers

from evalsite.core.names import NameSerializerField
from evalsite.core.text import NOTE_MAX, REASON_MAX
from models.forms import check_upload_size, parse_spec_text
from models.models import Alias, AliasMove, ModelVersion


def upload_size_checked(value: UploadedFile) -> UploadedFile:
    """An uploaded file within the upload limit (`check_upload_size`'s limit and message, as the
    field's 400), for a serializer's `validate_file`."""
    try:
        check_upload_size(value)
    except forms.ValidationError as exc:
        raise serializers.ValidationError(exc.messages) from exc
    return value


class VersionUploadSerializer(serializers.Serializer):
    version = NameSerializerField(kind="version")
    file = serializers.FileField(required=False)
    spec = serializers.JSONField(
        required=False,
        help_text="the model spec as a JSON string field, or a .spec.json file part",
        error_messages={
            "invalid": "The spec is not valid JSON: send the .spec.json contents or file part."
        },
    )
    # DRF collects declared fields by name; `parent` only shadows Field.parent for the type checker.
    parent = serializers.CharField(  # type: ignore[assignment]
        required=False, allow_blank=True, max_length=64
    )
    notes = serializers.CharField(required=False, allow_blank=True, max_length=NOTE_MAX)
    external = serializers.BooleanField(
        required=False, default=False, help_text="no file: predictions are imported, not run here"
    )
    provenance = serializers.CharField(required=False, allow_blank=True, max_length=NOTE_MAX)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("external"):
            clashing = [f for f in ("file", "spec") if attrs.get(f) is not None]
            if clashing:
                raise serializers.ValidationError(
                    {f: ["An external version has no runnable file and no spec."] for f in clashing}
                )
            return attrs
        missing = {f: ["This field is required."] for f in ("file", "spec") if f not in attrs}
        if missing:
            raise serializers.ValidationError(missing)
        return attrs

    def to_internal_value(self, data: Any) -> Any:
        # curl -F spec=@model.spec.json sends a file part; -F 'spec={...}' sends text.
        if hasattr(data, "getlist") and hasattr(data.get("spec"), "read"):
            data = data.copy()
            data["spec"] = data["spec"].read().decode("utf-8", errors="replace")
        return super().to_internal_value(data)

    def validate_file(self, value: Any) -> Any:
        return upload_size_checked(value)

    def validate_spec(self, value: Any) -> dict[str, Any]:
        if isinstance(value, str):
            try:
                value = parse_spec_text(value)
            except forms.ValidationError as exc:
                raise serializers.ValidationError(exc.messages) from exc
        if not isinstance(value, dict):
            raise serializers.ValidationError("The spec must be a JSON object.")
        return value


class AliasMoveSerializer(serializers.Serializer):
    version = NameSerializerField(kind="version")
    reason = serializers.CharField(max_length=REASON_MAX)


class VersionSerializer(serializers.ModelSerializer):
    family = serializers.CharField(source="family.name")
    ref = serializers.CharField()
    parent = serializers.SerializerMethodField()  # type: ignore[assignment]
    aliases = serializers.SerializerMethodField()
    children = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "ref",
            "family",
            "version",
            "format",
            "status",
            "rejection_reason",
            "status_note",
            "sha256",
            "size",
            "spec",
            "validation_report",
            "parent",
            "children",
            "aliases",
            "conversion",
            "notes",
            "provenance",
            "created_at",
            "validated_at",
            "url",
        ]

    def get_parent(self, obj: ModelVersion) -> str | None:
        return obj.parent.version if obj.parent is not None else None

    def get_aliases(self, obj: ModelVersion) -> list[str]:
        return sorted(a.name for a in obj.aliases.all())

    def get_children(self, obj: ModelVersion) -> list[str]:
        return sorted(c.version for c in obj.children.all())

    def get_url(self, obj: ModelVersion) -> str:
        request = self.context.get("request")
        url = obj.get_absolute_url()
        return request.build_absolute_uri(url) if request else url


class AliasSerializer(serializers.ModelSerializer):
    family = serializers.CharField(source="family.name")
    version = serializers.CharField(source="version.version")
    history = serializers.SerializerMethodField()

    class Meta:
        model = Alias
        fields = ["family", "name", "version", "updated_at", "history"]

    def get_history(self, obj: Alias) -> list[dict[str, Any]]:
        moves = AliasMove.objects.filter(alias=obj).select_related(
            "from_version", "to_version", "moved_by"
        )[:20]
        return [
            {
                "from": m.from_version.version if m.from_version else None,
                "to": m.to_version.version,
                "by": m.moved_by.get_username() if m.moved_by else "operator (CLI)",
                "at": m.moved_at.isoformat(),
                "reason": m.reason,
            }
            for m in moves
        ]
