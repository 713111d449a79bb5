"""Run a function in one thread per argument, each with its own database connection: the one
helper the concurrency tests share (their interleavings are forced inside the function)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection


def run_in_threads(
    target: Callable[[Any], object],
    args: Sequence[Any],
    *,
    together: bool = False,
    timeout: float = 60.0,
) -> list[BaseException]:
    """Call `target(arg)` in its own thread for each arg and wait; return what they raised.

    `together`: every thread waits at a barrier first, so the calls start at the same moment.
    Each thread closes its connection, so the test database can be dropped afterwards.
    """
    errors: list[BaseException] = []
    start = threading.Barrier(len(args), timeout=timeout) if together else None

    def run(arg: Any) -> None:
        try:
            if start is not None:
                start.wait()
            target(arg)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(a,)) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    return errors
