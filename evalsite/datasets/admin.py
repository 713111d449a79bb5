"""Admin: browse sets; versions and items are read-only (a version is immutable)."""

from django.contrib import admin

from evalsite.datasets.models import (
    AttributeRevision,
    Dataset,
    DatasetImport,
    DatasetVersion,
    Item,
)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "licence", "skin_tone_groups", "created_by", "created_at")
    search_fields = ("name", "description")


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "item_count", "no_subject_count", "created_by", "created_at")
    readonly_fields = [f.name for f in DatasetVersion._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("stem", "version", "width", "height", "size_bucket", "fg_fraction")
    list_filter = ("size_bucket",)
    readonly_fields = [f.name for f in Item._meta.fields]


@admin.register(AttributeRevision)
class AttributeRevisionAdmin(admin.ModelAdmin):
    list_display = ("version", "number", "source", "created_by", "created_at")


@admin.register(DatasetImport)
class DatasetImportAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "status", "outcome", "processed", "total", "created_at")
    list_filter = ("status",)
