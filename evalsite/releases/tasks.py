"""Celery tasks of the release app: thin, ids in, a service call."""

from __future__ import annotations

from celery import shared_task
from django.db import close_old_connections

from evalsite.releases.services.leaderboard import leaderboard_refresh


@shared_task(name="releases.refresh_leaderboard", ignore_result=True)
def refresh_leaderboard() -> bool:
    """Beat: rebuild the stored leaderboard when a run, snapshot, revision or alias changed."""
    close_old_connections()
    return leaderboard_refresh()
