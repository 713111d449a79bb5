"""The Celery app: JSON only, late acks, one message at a time, routes by queue.

Queues: `default` (imports, validation, bookkeeping), `torch`, `onnx`, and `coreml` (consumed only
by macOS workers). All reliability settings live in settings.py under CELERY_*.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import celeryd_init, worker_init, worker_process_init

from pipelines.heap import retain_freed_memory

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")

app = Celery("evalsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _install_bootsteps() -> None:
    from evalsite.core.bootsteps import SandboxReadyStep, WorkerHeartbeatStep

    app.steps["consumer"].add(SandboxReadyStep)
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
    from pipelines.sandbox_forkserver import prestart

    try:
        prestart()
    except Exception:  # only an optimisation: the first sandboxed child starts it otherwise
        logging.getLogger(__name__).warning("sandbox forkserver prestart failed", exc_info=True)


@worker_process_init.connect
def _adopt_sandbox_forkserver(**_: Any) -> None:
    """A pool process uses the worker's forkserver (or, where none was started, starts its own)."""
    if not _runs_model_code(list(app.amqp.queues.consume_from or {})):
        return
    from pipelines.sandbox_forkserver import adopt_forkserver, prestart

    try:
        adopt_forkserver() or prestart()
    except Exception:  # only an optimisation: the first sandboxed child starts it otherwise
        logging.getLogger(__name__).warning("sandbox forkserver prestart failed", exc_info=True)


@worker_init.connect
def _warm_storage_client(**_: Any) -> None:
    """Load the bucket client's libraries and service model once, in the worker's main process
    before the pool is forked: otherwise each pool process loaded them (about 0.3 s of CPU) on
    its first chunk's first upload, while that chunk waited."""
    from evalsite.core.files import warm_up

    try:
        warm_up()
    except Exception:  # only an optimisation: the first upload makes the client otherwise
        logging.getLogger(__name__).warning("storage client warm-up failed", exc_info=True)


def worker_command(argv: list[str]) -> tuple[bool, str | None]:
    """(whether `argv` starts a Celery worker, its -Q/--queues value or None for every queue)."""
    if not argv:
        return False, None
    prog = Path(argv[0])
    if not (prog.name == "celery" or (prog.name == "__main__.py" and prog.parent.name == "celery")):
        return False, None
    if "worker" not in argv[1:]:
        return False, None
    for i, arg in enumerate(argv):
        if arg in ("-Q", "--queues") and i + 1 < len(argv):
            return True, argv[i + 1]
        if arg.startswith("--queues="):
            return True, arg.split("=", 1)[1]
        if arg.startswith("-Q") and len(arg) > 2:
            return True, arg[2:]
    return True, None


# A worker's main process imports this module first thing (`celery -A evalsite worker`), seconds
# before Celery sends `celeryd_init` (Django set-up, task modules, the pool): starting the
# forkserver here lets its imports run meanwhile. Any other process (web, manage.py) skips it.
# The heap setting (pipelines.heap: freed arrays are reused, not faulted in again per image) is
# made before the pool processes are forked, so they inherit it.
_is_worker, _queues = worker_command(sys.argv)
if _is_worker:
    retain_freed_memory()
    _start_sandbox_forkserver(options={"queues": _queues})
