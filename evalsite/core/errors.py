"""Domain errors every layer may raise and every door translates.

`NotFound`: a selector was asked for a row that does not exist. Its message names what was asked
for. Pages answer 404 (`evalsite.core.middleware.NotFoundMiddleware`), the REST API answers a
404 JSON body (`evalsite.core.middleware.api_exception_handler`), commands print the message and
exit 1 — none of them needs to know about the others (a selector never raises `Http404`).
"""

from __future__ import annotations


class NotFound(LookupError):
    """No such row; the message says which."""


__all__ = ["NotFound"]
