"""Run untrusted model code in a child process with memory, CPU-time and wall-clock limits.

Why a child process: an uploaded model can segfault (native ops), exhaust memory or spin forever;
in-process, any of these takes the Celery worker down with it. A child forked from
multiprocessing's forkserver (a clean interpreter, never the worker itself, so no inherited
locks, threads or CUDA state; ``spawn`` where forkserver is missing) applies ``RLIMIT_AS``
(address space: an oversized allocation then fails as an exception instead of summoning the OOM
killer), ``RLIMIT_CPU`` (SIGXCPU when exceeded) and ``RLIMIT_CORE`` = 0 before it unpickles the
work, and the parent enforces the wall clock. The parent reports the child's fate precisely:
"killed by signal 11 (SIGSEGV)", "out of memory: …", "CPU time limit of 120 s exceeded
(SIGXCPU)", "timed out after 180 s", or the exception text. macOS does not enforce RLIMIT_AS;
there the wall clock and the kernel remain the backstop.

Two shapes:

* :func:`run_in_sandbox` — one function call in a fresh child (validation, conversions).
* :class:`SandboxedRunner` — one long-lived child for evaluation. Protocol over a duplex pipe:
  the child loads the runner once and answers ``("ready", info)`` (or ``("load_error", reason)``
  and exits); then for each request ``("predict_path", path)`` / ``("predict_array", image)`` it
  answers ``("ok", RawOutput)`` or ``("item_error", reason)`` — a bad image or a bad output fails
  that item only and the child keeps serving; ``("close",)`` ends it. If the child dies or a
  request exceeds the timeout, the parent kills it and raises :class:`SandboxCrashed` with the
  reason; :meth:`SandboxedRunner.start` can then start a fresh child for the remaining images.
  ``limits.cpu_seconds`` is the child's *total* CPU budget; ``limits.timeout_s`` applies to the
  load and to each request.
"""

from __future__ import annotations

import pickle
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.daemonic import children_allowed
from pipelines.formats import FormatError, sniff_format
from pipelines.heap import retain_freed_memory
from pipelines.runners.dryrun import ValidationReport
from pipelines.sandbox_forkserver import context
from pipelines.spec import ModelSpec, SpecError, parse_spec


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for one child. ``None`` disables a limit (not recommended for uploads)."""

    memory_mb: int | None = 4096
    cpu_seconds: int | None = 120
    timeout_s: float | None = 180.0


class SandboxError(RuntimeError):
    """Base class; ``reason`` is the user-facing sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SandboxCrashed(SandboxError):
    """The child died (signal, CPU limit, exit) or was killed at the wall-clock timeout."""


class SandboxFailed(SandboxError):
    """The sandboxed function raised; the child exited cleanly after reporting it."""


class ItemFailed(SandboxError):
    """One request of a :class:`SandboxedRunner` failed; the child is still serving."""


# ---------------------------------------------------------------- child side


def _apply_limits(limits: SandboxLimits) -> None:
    import resource

    def _set(which: int, soft: int, hard: int) -> None:
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):  # e.g. RLIMIT_AS on macOS; the wall clock still applies
            pass

    _set(resource.RLIMIT_CORE, 0, 0)  # a crashing model must not litter the worker with cores
    if limits.memory_mb is not None:
        n = limits.memory_mb * 2**20
        _set(resource.RLIMIT_AS, n, n)
    if limits.cpu_seconds is not None:
        # Hard limit a bit above soft: SIGXCPU at the soft limit is the reported fate; SIGKILL
        # at the hard limit only if the child ignores SIGXCPU.
        _set(resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 5)


def _describe(exc: BaseException, limits: SandboxLimits) -> str:
    from pipelines.runners.dryrun import describe_exception

    return describe_exception(exc, limits.memory_mb)


def _call_child(conn: Connection, limits: SandboxLimits, payload: bytes) -> None:
    _apply_limits(limits)
    try:
        fn, args, kwargs = pickle.loads(payload)
        result = fn(*args, **kwargs)
        conn.send(("ok", result))
    except BaseException as e:  # report everything, incl. MemoryError, to the parent
        try:
            conn.send(("error", _describe(e, limits)))
        except Exception:
            pass
    finally:
        conn.close()


def _runner_child(conn: Connection, limits: SandboxLimits, payload: bytes) -> None:
    _apply_limits(limits)
    retain_freed_memory()  # it predicts many photos: reuse freed tensors' memory (pipelines.heap)
    from pipelines.runners import create_runner
    from pipelines.runners.images import load_image_rgb

    try:
        path, spec, runtime, threads = pickle.loads(payload)
        model_spec = parse_spec(spec)
        runner = create_runner(model_spec, runtime, threads=threads)
        t0 = time.perf_counter()
        runner.load(path, model_spec)
        info = {**runner.describe(), "load_ms": (time.perf_counter() - t0) * 1e3}
    except BaseException as e:
        conn.send(("load_error", f"failed to load the model: {_describe(e, limits)}"))
        conn.close()
        return
    conn.send(("ready", info))
    while True:
        try:
            message = conn.recv()
        except EOFError:  # parent went away
            return
        if message[0] == "close":
            return
        try:
            image = load_image_rgb(message[1]) if message[0] == "predict_path" else message[1]
            conn.send(("ok", runner.predict(image)))
        except BaseException as e:
            conn.send(("item_error", _describe(e, limits)))


# --------------------------------------------------------------- parent side


def _fate(proc: Any, limits: SandboxLimits) -> str:
    """Why a child ended without answering, as a sentence."""
    code = proc.exitcode
    if code is None:
        return "the model process stopped answering"
    if code < 0:
        sig = -code
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else "?"
        if sig == signal.SIGXCPU:
            return f"CPU time limit of {limits.cpu_seconds} s exceeded (SIGXCPU)"
        hint = ""
        if sig == signal.SIGKILL:
            hint = " — likely out of memory (kernel OOM killer) or killed externally"
        elif sig == signal.SIGSEGV:
            hint = " — segmentation fault in native code"
        return f"the model process was killed by signal {sig} ({name}){hint}"
    return f"the model process exited with status {code} without returning a result"


def _await(conn: Connection, proc: Any, limits: SandboxLimits) -> Any:
    """Next message from the child, or SandboxCrashed (killing it on timeout)."""
    deadline = None if limits.timeout_s is None else time.monotonic() + limits.timeout_s
    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready = wait([conn, proc.sentinel], timeout=remaining)
        if conn in ready:
            try:
                return conn.recv()
            except (EOFError, OSError):
                proc.join(5)
                raise SandboxCrashed(_fate(proc, limits)) from None
        if proc.sentinel in ready:
            proc.join(5)
            if conn.poll():  # answered just before exiting
                continue
            raise SandboxCrashed(_fate(proc, limits))
        if deadline is not None and time.monotonic() >= deadline:
            proc.kill()
            proc.join(5)
            raise SandboxCrashed(
                f"timed out after {limits.timeout_s:g} s (wall clock); the model process was killed"
            )


def run_in_sandbox(fn: Any, *args: Any, limits: SandboxLimits | None = None, **kwargs: Any) -> Any:
    """Call ``fn(*args, **kwargs)`` in a limited child; return its (picklable) result.

    ``fn`` must be importable by module name (a module-level function, not one defined in a
    script's ``__main__``: forkserver children do not import the parent's main module).
    Raises :class:`SandboxFailed` with the exception text (``out of memory: …`` for allocation
    failures) or :class:`SandboxCrashed` with the child's fate.
    """
    limits = limits or SandboxLimits()
    payload = pickle.dumps((fn, args, kwargs))
    parent, child = context().Pipe(duplex=False)
    with children_allowed():  # also from a Celery pool process (the Process copies its config)
        proc = context().Process(target=_call_child, args=(child, limits, payload), daemon=True)
        proc.start()
    child.close()
    try:
        kind, value = _await(parent, proc, limits)
    finally:
        parent.close()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if kind == "error":
        raise SandboxFailed(value)
    return value


class SandboxedRunner:
    """A runner living in a limited child process; see the module docstring for the protocol."""

    def __init__(
        self,
        path: str | Path | None,
        spec: ModelSpec | dict[str, Any],
        runtime: str = "auto",
        *,
        limits: SandboxLimits | None = None,
        threads: int | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.spec = parse_spec(spec).to_dict()
        self.runtime = runtime
        self.limits = limits or SandboxLimits(cpu_seconds=None)
        self.threads = threads
        self.info: dict[str, Any] = {}
        self._proc: Any = None
        self._conn: Connection | None = None

    def start(self) -> dict[str, Any]:
        """(Re)start the child and load the model; returns runner info incl. ``load_ms``."""
        self.close()
        parent, child = context().Pipe(duplex=True)
        payload = pickle.dumps((self.path, self.spec, self.runtime, self.threads))
        with children_allowed():
            self._proc = context().Process(
                target=_runner_child, args=(child, self.limits, payload), daemon=True
            )
            self._proc.start()
        child.close()
        self._conn = parent
        kind, value = self._request(None)
        if kind == "load_error":
            self.close()
            raise SandboxFailed(value)
        self.info = value
        return value

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def _request(self, message: tuple[Any, ...] | None) -> tuple[str, Any]:
        if self._conn is None or self._proc is None:
            raise SandboxError("the sandboxed runner is not started; call start()")
        try:
            if message is not None:
                self._conn.send(message)
            result: tuple[str, Any] = _await(self._conn, self._proc, self.limits)
            return result
        except (SandboxCrashed, BrokenPipeError, OSError) as e:
            reason = e.reason if isinstance(e, SandboxCrashed) else _fate(self._proc, self.limits)
            self.close()
            raise SandboxCrashed(reason) from None

    def _predict(self, message: tuple[Any, ...]) -> Any:
        kind, value = self._request(message)
        if kind == "item_error":
            raise ItemFailed(value)
        return value

    def predict_path(self, image_path: str | Path) -> Any:
        """RawOutput for an image file decoded in the child (EXIF applied); ItemFailed/Crashed."""
        return self._predict(("predict_path", str(image_path)))

    def predict(self, image_rgb_uint8: np.ndarray) -> Any:
        """RawOutput for an RGB uint8 array sent over the pipe."""
        return self._predict(("predict_array", np.ascontiguousarray(image_rgb_uint8)))

    def close(self) -> None:
        """Ask the child to exit, then make sure it has."""
        if self._conn is not None:
            try:
                self._conn.send(("close",))
            except (OSError, BrokenPipeError):
                pass
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
            self._proc = None

    def __enter__(self) -> SandboxedRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def validate_model(
    path: str | Path | None,
    spec: ModelSpec | dict[str, Any],
    *,
    memory_mb: int = 4096,
    cpu_seconds: int = 120,
    timeout_s: float = 180.0,
    runtime: str = "auto",
    threads: int | None = None,
) -> ValidationReport:
    """Check a model file against its spec: sniff, sandboxed load, dry forward, output checks.

    Never raises for a bad model or spec — the report says why it was rejected.
    """
    try:
        model_spec = parse_spec(spec)
    except SpecError as e:
        return ValidationReport(ok=False, reason=f"invalid spec: {e}")
    fmt: str = model_spec.format
    if fmt == "builtin":
        path = None
    else:
        if path is None:
            return ValidationReport(ok=False, reason=f"a {fmt} model needs a file", format=fmt)
        try:
            fmt = sniff_format(path)
        except FormatError as e:
            return ValidationReport(ok=False, reason=str(e))
        if fmt != model_spec.format:
            return ValidationReport(
                ok=False,
                format=fmt,
                reason=f"the file is a {fmt} model but the spec says format {model_spec.format!r}",
            )
    from pipelines.runners.dryrun import dry_run

    limits = SandboxLimits(memory_mb=memory_mb, cpu_seconds=cpu_seconds, timeout_s=timeout_s)
    try:
        result = run_in_sandbox(
            dry_run,
            str(path) if path else None,
            model_spec.to_dict(),
            runtime,
            threads,
            memory_mb,
            limits=limits,
        )
    except SandboxError as e:
        return ValidationReport(ok=False, reason=e.reason, format=fmt)
    report: ValidationReport = result
    return report
