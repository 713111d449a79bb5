"""Log hygiene: an expected refusal is one line, not a traceback.

Django logs every 4xx answer through `django.request` (and `django.security`), attaching the
exception that produced it: a PermissionDenied behind a 403 writes a full traceback for what is
routine (a role without the right, a stale link, a second decision). The filter keeps the one
line (method, path, status) and drops the traceback for those statuses; a 5xx keeps it.
"""

from __future__ import annotations

import logging

EXPECTED_STATUSES = frozenset({400, 401, 403, 404, 405, 409, 410, 413, 429})


class ExpectedRefusals(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status in EXPECTED_STATUSES or (
            record.name.startswith("django.security") and record.levelno < logging.ERROR
        ):
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        return True
