"""The Celery app: JSON only, late acks, one message at a time, routes by queue.

Queues: `default` (imports, validation, bookkeeping), `torch`, `onnx`, and `coreml` (consumed only
by macOS workers). All reliability settings live in settings.py under CELERY_*.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import celeryd_init, worker_process_init

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


def _runs_model_code(queues: object) -> bool:
    """False for a worker that consumes only queues without model code (maintenance, coreml)."""
    if not queues:
        return True  # no -Q: every queue
    if isinstance(queues, str):
        names = {n.strip() for n in queues.split(",")}
    elif isinstance(queues, list | tuple | set | frozenset | dict):
        names = {str(q).strip() for q in queues}
    else:
        return True
    return bool(names & SANDBOX_QUEUES)


@celeryd_init.connect
def _start_sandbox_forkserver(options: dict[str, Any] | None = None, **_: Any) -> None:
    """Start the sandbox forkserver as the worker process starts (its torch imports take seconds).

    Lazily, the first chunk a fresh worker took waited for them (≈5 s of CPU on the demo model);
    started here they run while the worker sets up Django, its pool and its consumer. The pool
    processes, forked later, share this server (`_adopt_sandbox_forkserver`). A worker that runs
    no model code (only `maintenance`, or `coreml` on a Mac) keeps the memory.
    """
    if not _runs_model_code((options or {}).get("queues")):
        return
    from pipelines.sandbox import prestart

    try:
        prestart()
    except Exception:  # only an optimisation: the first sandboxed child starts it otherwise
        logging.getLogger(__name__).warning("sandbox forkserver prestart failed", exc_info=True)


@worker_process_init.connect
def _adopt_sandbox_forkserver(**_: Any) -> None:
    """A pool process uses the worker's forkserver (or, where none was started, starts its own)."""
    if not _runs_model_code(list(app.amqp.queues.consume_from or {})):
        return
    from pipelines.sandbox import adopt_forkserver, prestart

    try:
        adopt_forkserver() or prestart()
    except Exception:  # only an optimisation: the first sandboxed child starts it otherwise
        logging.getLogger(__name__).warning("sandbox forkserver prestart failed", exc_info=True)
