"""The model session a chunk uses: the registry's sandboxed runner behind a small interface.

Why an adapter: the chunk handler needs four things — open (load once), warm up, predict one
photo, close — and must tell apart three kinds of failure: the model cannot load (every item of
the chunk fails with that reason), the model process died (restart, fail this item only), and a
bad output for one image (fail this item, keep the process). The sandbox (pipelines.sandbox) runs
model code in a child process under memory/CPU limits; this module only maps its API and errors.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any, Protocol

import numpy as np

from models.models import ModelVersion
from pipelines.runners.base import RawOutput

log = logging.getLogger(__name__)

#: Warm-up inferences per session start: the first forward pays lazy initialisation (kernel
#: selection, allocator growth), which is not what a user waits for per image.
WARMUP_RUNS = 1


class SessionCrashed(RuntimeError):
    """The sandboxed child died (segfault, out of memory, CPU limit); restart it."""


class ModelLoadError(RuntimeError):
    """The model cannot be loaded at all on this worker (every item would fail the same way)."""


class BadOutput(ValueError):
    """The model returned something that is not an alpha of the spec's size (NaN, shape...)."""


class PredictError(RuntimeError):
    """The model raised on this image; the child is still alive."""


class Session(Protocol):
    device: str

    @property
    def alive(self) -> bool: ...

    def warmup(self) -> int: ...

    def predict(self, photo_rgb: np.ndarray) -> RawOutput: ...

    def environment(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def sandbox_limits() -> dict[str, int]:
    """The registry's validation limits (memory, per-request wall clock) apply to runs too."""
    from models.services import validation_limits

    return validation_limits()


def runner_threads() -> int | None:
    """Intra-op threads of the model runtime (EVAL_RUNNER_THREADS; unset: the runtime's default).

    Several worker processes on one machine should each get a share of the cores (e.g. 1 thread
    each for 1 process per core): bench/throughput.py measures both settings.
    """
    from django.conf import settings

    return settings.EVAL_RUNNER_THREADS or None


class SandboxSession:
    """One long-lived sandboxed runner (loads once, predicts many photos)."""

    def __init__(self, version: ModelVersion, runtime: str, threads: int | None = None) -> None:
        from pipelines.sandbox import SandboxedRunner, SandboxError, SandboxLimits

        limits = sandbox_limits()
        self.threads = threads if threads is not None else runner_threads()
        from models.files import version_file

        model_path = version_file(version)
        self._runner = SandboxedRunner(
            str(model_path) if model_path is not None else None,
            version.spec,
            runtime,
            # No total CPU budget: a chunk legitimately spends minutes of CPU; the memory limit
            # and the per-image wall clock still stop a runaway model.
            limits=SandboxLimits(
                memory_mb=limits["memory_mb"], cpu_seconds=None, timeout_s=limits["timeout_s"]
            ),
            threads=self.threads,
        )
        try:
            info = self._runner.start()
        except SandboxError as exc:
            raise ModelLoadError(exc.reason) from exc
        except Exception as exc:  # a spec the runner refuses (runtime clash) is a load error too
            raise ModelLoadError(f"{type(exc).__name__}: {exc}") from exc
        self._info: dict[str, Any] = dict(info or {})
        self.device = str(self._info.get("device") or runtime)

    @property
    def alive(self) -> bool:
        return bool(self._runner.alive)

    def warmup(self) -> int:
        h, w = (int(v) for v in self._runner.spec["input"]["size"])
        photo = np.full((h, w, 3), 128, dtype=np.uint8)
        for _ in range(WARMUP_RUNS):
            self.predict(photo)
        return WARMUP_RUNS

    def predict(self, photo_rgb: np.ndarray) -> RawOutput:
        from pipelines.sandbox import ItemFailed, SandboxCrashed

        try:
            result: RawOutput = self._runner.predict(photo_rgb)
        except SandboxCrashed as exc:
            raise SessionCrashed(exc.reason) from exc
        except ItemFailed as exc:
            raise PredictError(exc.reason) from exc
        return result

    def environment(self) -> dict[str, Any]:
        return {
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "runtime_threads": self.threads,
            **self._info,
        }

    def close(self) -> None:
        try:
            self._runner.close()
        except Exception:  # the child may already be gone; closing must never fail a chunk
            pass


def open_session(version: ModelVersion, runtime: str, threads: int | None = None) -> Session:
    return SandboxSession(version, runtime, threads)


# --- one warm session per worker process ------------------------------------------------------

#: A cached session's child is closed after this long without a chunk (it holds the model and the
#: runtime in memory). Long enough to bridge the gap between two chunks of one run on a busy
#: queue; short enough that an idle worker gives the memory back within minutes.
SESSION_IDLE_SECONDS = 120.0

_lock = threading.Lock()
_cached: dict[str, Any] = {"key": None, "session": None, "timer": None}


def _key(version: ModelVersion, runtime: str) -> tuple[Any, ...]:
    return (version.pk, version.sha256, runtime, runner_threads())


def session_acquire(version: ModelVersion, runtime: str) -> tuple[Session, bool]:
    """The process's warm session for this model, or a new one; (session, newly_opened).

    Why: starting the sandbox child and loading the model costs seconds (torch import + load),
    far more than a chunk of images; consecutive chunks of one run on the same worker reuse it.
    """
    with _lock:
        _cancel_timer()
        cached = _cached["session"]
        if _cached["key"] == _key(version, runtime) and cached is not None:
            if cached.alive:
                return cached, False
            # Its process died while idle (killed, out of memory elsewhere): not the fault of
            # the image that would have met the dead process first, so start a fresh one.
            log.warning("the warm model process of %s died while idle; starting a new one",
                        version)  # fmt: skip
        _close_cached()
    session = open_session(version, runtime)
    with _lock:
        _cached.update(key=_key(version, runtime), session=session)
    return session, True


def session_release(session: Session, *, broken: bool = False) -> None:
    """Keep a healthy session warm for the next chunk (closed after SESSION_IDLE_SECONDS)."""
    with _lock:
        if _cached["session"] is not session:
            session.close()
            return
        if broken:
            _close_cached()
            return
        timer = threading.Timer(SESSION_IDLE_SECONDS, session_cache_clear)
        timer.daemon = True
        _cached["timer"] = timer
        timer.start()


def session_cache_clear() -> None:
    with _lock:
        _cancel_timer()
        _close_cached()


def _cancel_timer() -> None:
    if _cached["timer"] is not None:
        _cached["timer"].cancel()
        _cached["timer"] = None


def _close_cached() -> None:
    session = _cached["session"]
    _cached.update(key=None, session=None)
    if session is not None:
        session.close()
