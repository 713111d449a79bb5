"""The sandbox's forkserver: the clean interpreter every sandboxed child is forked from.

Children are forked from multiprocessing's *forkserver*, never from the worker itself, so they
inherit no locks, threads or CUDA state; ``spawn`` is the fallback where forkserver does not
exist. This module starts that server early (`prestart`: its torch imports take seconds), lets a
Celery pool process share its parent's server (`adopt_forkserver`), and tells when the server can
fork (`wait_ready`). `pipelines.sandbox` forks its children through `context()`.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from typing import Any

from pipelines.daemonic import children_allowed

# Children are forked from multiprocessing's *forkserver*: a fresh single-threaded interpreter
# that has imported these once, so a child starts in ~0.1 s instead of re-importing torch for
# ~2 s as a spawned child does (measured on the 2-core CI box), with the same isolation (the
# server is never the worker itself). Spawn is the fallback where forkserver does not exist.
PRELOAD = (
    "numpy",
    "torch",
    "onnxruntime",
    "pipelines.runners",
    "pipelines.runners.dryrun",
    "pipelines.runners.torch_runners",
    "pipelines.runners.onnx_runner",
    # What `torch.export.load` imports lazily on its first call (sympy, dynamo, the serialiser):
    # ~2.4 s of every session's model load otherwise (measured: load + module() of the demo
    # model 6.7 s cold, 1.5 s with these imported). A name this torch lacks is skipped.
    "sympy",
    "torch._dynamo",
    "torch._export.serde.serialize",
    "torch.export._unlift",
    "torch.export.pt2_archive._package",
    "torch.fx.experimental.validator",
)
#: Imported first by a server `prestart` starts: it then dies with its parent, even mid-import.
SERVER_GUARD = "pipelines.sandbox_server"
_ctx: Any = None


def context() -> Any:
    """The multiprocessing context sandboxed children start from (forkserver, else spawn)."""
    global _ctx
    if _ctx is None:
        if "forkserver" in mp.get_all_start_methods():
            _ctx = mp.get_context("forkserver")
            _ctx.set_forkserver_preload(list(PRELOAD))
        else:
            _ctx = mp.get_context("spawn")
    return _ctx


def prestart() -> bool:
    """Start the forkserver now, so its imports (torch, …) run before the first child is needed.

    Returns at once (the server imports in the background); True when a forkserver is used. A
    worker calls this when its pool process starts: the first chunk then waits for the model
    load only, not for ~3 s of imports on top.
    """
    ctx = context()
    if ctx.get_start_method() != "forkserver":
        return False
    from multiprocessing import forkserver

    # Started from a main thread (a worker's, a pool process's), the server also dies with its
    # parent (`pipelines.sandbox_server`); not from other threads, because the kernel ties that
    # signal to the thread that started it, and a pool thread may end while the server serves.
    main = threading.current_thread() is threading.main_thread()
    with children_allowed():
        if main:
            ctx.set_forkserver_preload([SERVER_GUARD, *PRELOAD])
        try:
            forkserver.ensure_running()
        finally:
            ctx.set_forkserver_preload(list(PRELOAD))
    return True


def adopt_forkserver() -> bool:
    """In a process forked from the one that started the forkserver: use that server.

    multiprocessing lets a fork()ed child (a Celery pool process) connect to its parent's
    forkserver, but its liveness check is `waitpid`, which only the server's parent may call;
    the child's check becomes "the server process still runs", and it starts its own server
    when the inherited one is gone. True when there was a server to adopt.
    """
    if context().get_start_method() != "forkserver":
        return False
    from multiprocessing import forkserver

    server: Any = forkserver._forkserver  # type: ignore[attr-defined]
    inherited = server._forkserver_pid
    if inherited is None:
        return False
    start_own = type(server).ensure_running

    def ensure_running() -> None:
        if server._forkserver_pid == inherited:
            if _running(inherited):
                return
            server._forkserver_pid = None  # gone: the next lines start this process's own
            server._forkserver_address = None
            server._forkserver_alive_fd = None
        start_own(server)

    server.ensure_running = ensure_running
    return True


def _ready_probe() -> None:
    """The child `wait_ready` forks: it does nothing; that the server forked it is the answer."""


def wait_ready(timeout: float) -> bool:
    """Wait, at most `timeout` s, until the forkserver `prestart` started here can fork children.

    The server imports PRELOAD (torch, torch._dynamo, …: seconds of CPU) before it forks its
    first child, so a process whose first sandboxed call comes in meanwhile waits for them. A
    worker calls this before it consumes and reports itself live, so "live" means "can run a
    model now" and a chunk is not taken by a worker that cannot start it yet. It forks one no-op
    child. False, at once, where no forkserver was started in this process (nothing to wait
    for: nothing is started here); False when the server is not ready in time or the probe
    failed (the first sandboxed call then reports why).
    """
    if _ctx is None or _ctx.get_start_method() != "forkserver":
        return False
    from multiprocessing import forkserver

    if forkserver._forkserver._forkserver_pid is None:  # type: ignore[attr-defined]
        return False
    outcome: list[bool] = []

    def probe() -> None:
        try:
            with children_allowed():
                child = _ctx.Process(target=_ready_probe, name="sandbox-ready-probe")
                child.start()  # blocks until the server has imported PRELOAD and forked
            child.join()
            outcome.append(child.exitcode == 0)
        except Exception:
            outcome.append(False)

    # A thread, because `start` waits on the server's socket with no timeout of its own: when
    # the server is stuck, the probe thread (a daemon) is left behind and the caller goes on.
    thread = threading.Thread(target=probe, name="sandbox-ready", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(outcome and outcome[0])


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (a dead server its parent has not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False
    except IndexError:
        return True
