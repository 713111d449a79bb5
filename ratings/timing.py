"""Server-side time of each request, as a `Server-Timing: app;dur=<ms>` response header.

Why a header: the load bench (bench/rating_load.py) runs 50 client processes against several
gunicorn workers; a header travels with each response to the client that made the request, so
"submit + fetch next" server time is measured without shared state between processes, and browser
dev tools show it too. Enable by adding "ratings.timing.ServerTimingMiddleware" first in MIDDLEWARE.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class ServerTimingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        response["Server-Timing"] = f"app;dur={elapsed_ms:.2f}"
        return response
