"""Imported first by the sandbox forkserver (`pipelines.sandbox_forkserver.PRELOAD`): the server
dies with the process that started it.

Why: a forkserver otherwise notices its parent's death only between requests, when the pipe it
watches reaches end-of-file, and not at all while it is still importing torch (seconds). A
worker SIGKILLed during that window would leave the server running on its own until its imports
end. With PR_SET_PDEATHSIG the kernel kills it together with its parent, as the worker's pool
processes are (evalsite.core.bootsteps). The sandboxed children the server forks do not inherit
the setting; they end when their pipe to the worker closes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Ask the kernel for SIGKILL when the parent dies (Linux only); True when set."""
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
    return True


die_with_parent()
