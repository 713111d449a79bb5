"""The Celery app: JSON only, late acks, one message at a time, routes by queue.

Queues: `default` (imports, validation, bookkeeping), `torch`, `onnx`, and `coreml` (consumed only
by macOS workers). All reliability settings live in settings.py under CELERY_*.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")

app = Celery("evalsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _install_bootsteps() -> None:
    from evalsite.core.bootsteps import WorkerHeartbeatStep

    app.steps["consumer"].add(WorkerHeartbeatStep)


_install_bootsteps()
