from django.contrib import admin

from evalsite.core.models import Chunk, Job, ServiceHeartbeat, WorkerHeartbeat


class ChunkInline(admin.TabularInline):
    model = Chunk
    extra = 0
    fields = ("index", "queue", "status", "attempts", "claimed_by", "lease_expires_at", "error")
    readonly_fields = fields


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "created_by", "created_at", "finished_at")
    list_filter = ("kind", "status")
    inlines = [ChunkInline]


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ("id", "job", "index", "queue", "status", "attempts", "claimed_by")
    list_filter = ("status", "queue")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "pid", "queues", "platform", "version", "last_seen")


@admin.register(ServiceHeartbeat)
class ServiceHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "last_seen")
