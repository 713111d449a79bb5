"""Admin views of the registry: read-mostly (versions are immutable; aliases move via services,
which keep the history and the production rule, so the admin does not edit them)."""

from __future__ import annotations

from django.contrib import admin

from models.models import Alias, AliasMove, ModelFamily, ModelVersion


@admin.register(ModelFamily)
class ModelFamilyAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "format", "status", "size", "created_by", "created_at"]
    list_filter = ["status", "format", "family"]
    search_fields = ["version", "sha256", "family__name"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields if f.name != "notes"]


@admin.register(Alias)
class AliasAdmin(admin.ModelAdmin):
    list_display = ["__str__", "version", "updated_by", "updated_at"]

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(AliasMove)
class AliasMoveAdmin(admin.ModelAdmin):
    list_display = ["alias", "from_version", "to_version", "moved_by", "moved_at", "reason"]

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
