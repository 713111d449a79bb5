"""Worker liveness: a consumer bootstep writes a `WorkerHeartbeat` row every few seconds.

The health and System pages read these rows only; remote-control `inspect` is an extra that
may not answer (a busy solo worker, a broker without fanout), so nothing depends on it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from typing import Any

import celery
from celery import bootsteps
from celery.signals import beat_embedded_init, worker_process_init
from django.conf import settings
from django.db import connection
from django.utils import timezone

log = logging.getLogger(__name__)


def write_heartbeat(
    hostname: str, queues: list[str], started_at: Any, storage: dict[str, Any] | None = None
) -> None:
    from evalsite.core.models import WorkerHeartbeat

    try:
        WorkerHeartbeat.objects.update_or_create(
            hostname=hostname,
            defaults={
                "pid": os.getpid(),
                "queues": sorted(queues),
                "version": celery.__version__,
                "platform": sys.platform,
                "started_at": started_at,
                "last_seen": timezone.now(),
                "storage": storage or {},
            },
        )
    except Exception as exc:  # the DB may be briefly locked or down; the next beat tries again
        from evalsite.core.faults import is_infrastructure_error

        if not is_infrastructure_error(exc):
            log.exception("could not write worker heartbeat")
        else:
            log.warning("could not write worker heartbeat: database unreachable (%s)", exc)
    finally:
        connection.close()


class SandboxReadyStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """A worker that runs model code consumes, and reports itself live, once its sandbox is ready.

    The sandbox forkserver (`pipelines.sandbox_forkserver.prestart`, started as the worker process
    starts) imports torch and the torch.export loader: seconds of CPU that end after Celery is up.
    Until then a chunk the worker took would wait, while another worker that is ready could run
    it, and the System page would call a worker live that cannot yet run a model. So the
    consumer's start waits here (the event loop that fetches messages starts after this step) for
    at most WORKER_SANDBOX_READY_SECONDS; past that it goes on, and the first chunk waits or fails
    with the reason. Workers that run no model code have no server and pass at once.
    """

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, parent: Any) -> None:
        import time

        from pipelines.sandbox_forkserver import wait_ready

        began = time.monotonic()
        timeout = settings.WORKER_SANDBOX_READY_SECONDS
        if wait_ready(timeout):
            log.info("sandbox ready: waited %.2f s before consuming", time.monotonic() - began)
        elif time.monotonic() - began >= timeout:
            log.warning("sandbox not ready after %.0f s; consuming anyway", timeout)


class WorkerHeartbeatStep(bootsteps.StartStopStep):  # type: ignore[misc]
    requires = {"celery.worker.consumer.tasks:Tasks", "evalsite.core.bootsteps:SandboxReadyStep"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.timer_ref: Any = None
        self.started_at = timezone.now()
        self.storage: dict[str, Any] = {}
        self.probing = threading.Event()

    def start(self, parent: Any) -> None:
        hostname = parent.hostname
        queues = [q.name for q in parent.app.amqp.queues.consume_from.values()]

        def beat() -> None:
            write_heartbeat(hostname, queues, self.started_at, self.storage)

        self.storage = _probe()
        beat()
        self.timer_ref = parent.timer.call_repeatedly(settings.WORKER_HEARTBEAT_SECONDS, beat)
        self.probing.clear()
        threading.Thread(target=self._probe_loop, name="storage-probe", daemon=True).start()

    def _probe_loop(self) -> None:
        """Probe storage on a thread of its own: an unreachable bucket makes a probe wait for its
        timeout, which must not delay the heartbeat (the worker would look dead)."""
        while not self.probing.wait(settings.WORKER_HEARTBEAT_SECONDS):
            self.storage = _probe()

    def stop(self, parent: Any) -> None:
        self.probing.set()
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None

    def shutdown(self, parent: Any) -> None:
        self.stop(parent)
        from evalsite.core.models import WorkerHeartbeat

        try:
            WorkerHeartbeat.objects.filter(hostname=parent.hostname).delete()
        except Exception:
            log.exception("could not remove worker heartbeat")


def _probe() -> dict[str, Any]:
    from evalsite.core.files import storage_probe

    try:
        return storage_probe()
    except Exception as exc:  # a probe must never stop the heartbeat
        log.warning("storage probe failed: %s", exc)
        return {"reachable": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


@worker_process_init.connect
@beat_embedded_init.connect
def _die_with_parent(**_: Any) -> None:
    """Pool children (and an embedded beat) die when the worker's main process is SIGKILLed.

    Otherwise an orphaned child would keep running (and heartbeating) a chunk whose worker is gone.
    """
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        except OSError:
            log.warning("prctl(PR_SET_PDEATHSIG) unavailable; orphaned pool children may linger")
    connection.close()  # never share the parent's DB socket with a forked child
