"""Start child processes from a daemonic process (a Celery prefork pool worker).

multiprocessing refuses children of daemonic processes because it cannot promise to reap them;
the sandbox reaps its own child (join/kill in `finally`, and the child exits on EOF when its parent
dies), so lifting the flag while *starting* is safe. Celery's billiard also leaves its own
AuthenticationString type as the process authkey, which the stdlib's spawn/forkserver refuse to
pickle; the same bytes in the stdlib type are used while starting.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def children_allowed() -> Iterator[None]:
    config: dict[str, Any] = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    saved = dict(config)
    config["daemon"] = False
    if "authkey" in config:
        config["authkey"] = multiprocessing.process.AuthenticationString(  # type: ignore[attr-defined]
            bytes(config["authkey"])
        )
    try:
        yield
    finally:
        config.clear()
        config.update(saved)
