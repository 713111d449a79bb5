"""Crash-safe background work and worker liveness.

The database, not the broker, is the source of truth for work: a `Job` is split into `Chunk`s;
a worker claims a chunk with a conditional UPDATE and renews a lease by heartbeat while it works;
the reaper (Celery beat) re-enqueues chunks whose lease expired. See evalsite/core/jobs.py.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class JobStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(models.Model):
    kind = models.CharField(max_length=64, db_index=True, help_text="registered job kind")
    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True
    )
    payload = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The kind's final hook (on_done / on_failed / on_cancelled) is claimed with a conditional
    # UPDATE of `hook_claimed_at` and recorded in `hook_ran_at`, so it runs once even when the
    # worker that finished the job died first and the reaper runs it instead.
    hook_claimed_at = models.DateTimeField(null=True, blank=True)
    hook_ran_at = models.DateTimeField(null=True, blank=True)
    # Tries of the current hook; a hook that keeps raising is given up after JOB_MAX_HOOK_ATTEMPTS
    # (a done hook by failing the job, so its failed hook shows the reason on the owner's page).
    hook_attempts = models.PositiveIntegerField(default=0)
    hook_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED}


class Chunk(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    queue = models.CharField(max_length=32, default="default")
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    # Runs of the current attempt cut short by a database error (resumed without a new attempt).
    interruptions = models.PositiveIntegerField(default=0)
    claimed_by = models.CharField(max_length=255, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["job_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="chunk_unique_index"),
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} of job {self.job_id} ({self.status})"


class WorkerHeartbeat(models.Model):
    """Written by a consumer bootstep every few seconds; the health page reads only this."""

    hostname = models.CharField(max_length=255, unique=True)
    pid = models.PositiveIntegerField()
    queues = models.JSONField(default=list)
    version = models.CharField(max_length=64, blank=True)
    platform = models.CharField(max_length=32, blank=True)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    #: `evalsite.core.files.storage_probe`: backend, whether this worker reaches it, cache use.
    storage = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname


class ServiceHeartbeat(models.Model):
    """Last run of a periodic service such as the beat-driven reaper."""

    name = models.CharField(max_length=64, unique=True)
    last_seen = models.DateTimeField()
    detail = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.name


class TokenPolicy(models.Model):
    """What one API key (DRF `Token`) may do and when it stops working; its last use.

    `scopes` restrict the token on top of its user's role (`evalsite/core/scopes.py`); a key
    without a policy row (made before scopes existed, backfilled by migration) holds every scope
    of its user's role.
    """

    token = models.OneToOneField(
        "authtoken.Token", primary_key=True, on_delete=models.CASCADE, related_name="policy"
    )
    name = models.CharField(max_length=100, blank=True, help_text="what the key is for")
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_from = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"token policy of {self.token_id}"
