"""Server time of page views through Django's test client (Django set up by the caller)."""

from __future__ import annotations

import time
from typing import Any

#: Requested once before a page is timed: the process's own start-up (URL resolver, middleware,
#: the base templates, lazy imports) is paid by whichever page a worker serves first, so it is
#: measured and printed apart from the page under test.
WARM_UP_URL = "/"


def server_timing_ms(header: str) -> float | None:
    """The app's duration in a `Server-Timing: app;dur=12.34` header value (None without one)."""
    for part in header.split(";"):
        if part.startswith("dur="):
            return float(part[4:])
    return None


def warm_up(client: Any) -> float:
    """Request WARM_UP_URL once; its wall time in ms."""
    started = time.perf_counter()
    client.get(WARM_UP_URL)
    return (time.perf_counter() - started) * 1000.0


def view_ms(client: Any, url: str) -> tuple[float, Any]:
    """One view of `url`: its server time in ms (wall time without the header) and the response."""
    started = time.perf_counter()
    response = client.get(url)
    wall = (time.perf_counter() - started) * 1000.0
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    server = server_timing_ms(response.headers.get("Server-Timing", ""))
    return (wall if server is None else server), response
