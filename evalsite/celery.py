"""The Celery app: JSON only, late acks, one message at a time, routes by queue.

Queues: `default` (imports, validation, bookkeeping), `torch`, `onnx`, and `coreml` (consumed only
by macOS workers). All reliability settings live in settings.py under CELERY_*.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")

app = Celery("evalsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _install_bootsteps() -> None:
    from evalsite.core.bootsteps import WorkerHeartbeatStep

    app.steps["consumer"].add(WorkerHeartbeatStep)


_install_bootsteps()


#: Queues whose tasks run model code in a sandboxed child (chunks of runs, model validation).
SANDBOX_QUEUES = frozenset({"default", "torch", "onnx"})


@worker_process_init.connect
def _prestart_sandbox(**_: Any) -> None:
    """Start the pool process's sandbox forkserver at once (its torch imports take seconds).

    Lazily, the first chunk a fresh worker took waited for them (≈3 s of a 15 s demo run);
    started here they overlap the worker's start-up and its wait for work. A worker that runs
    no model code (only `maintenance`, or `coreml` on a Mac) keeps the memory.
    """
    queues = {str(name) for name in (app.amqp.queues.consume_from or {})}
    if queues and not queues & SANDBOX_QUEUES:
        return
    from pipelines.sandbox import prestart

    try:
        prestart()
    except Exception:  # only an optimisation: the first sandboxed child starts it otherwise
        import logging

        logging.getLogger(__name__).warning("sandbox forkserver prestart failed", exc_info=True)
