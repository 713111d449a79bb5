"""Admin views of campaigns, tasks, assignments and ratings (read-mostly: for support work)."""

from django.contrib import admin

from ratings.models import Assignment, Campaign, Rating, Task


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "dataset_version", "mode", "overlap", "status", "created_at")
    list_filter = ("status", "mode")


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("pk", "campaign", "item", "run_a", "run_b", "stratum", "divergence")
    list_filter = ("stratum",)
    raw_id_fields = ("campaign", "item", "run_a", "run_b")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("pk", "task", "annotator", "left_is_a", "leased_until", "submitted_at")
    raw_id_fields = ("task", "campaign", "annotator")


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = ("pk", "task", "annotator", "shown_choice", "outcome", "score", "late")
    list_filter = ("late", "outcome")
    raw_id_fields = ("assignment", "task", "campaign", "annotator")
