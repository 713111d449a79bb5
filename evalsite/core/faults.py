"""Whose fault is a failure: the infrastructure's (database, the worker's storage) or the work's.

Why it matters: an infrastructure fault is waited out and retried without consuming an attempt,
and never becomes an item's result or a model's score; only the work's own errors do
(`evalsite.core.tasks`, `evalsite.evals.services.execute`).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and the exceptions behind it (`__cause__`, else `__context__`), each once: handlers
    may wrap the driver's or the filesystem's error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        current = current.__cause__ or current.__context__


def is_infrastructure_error(exc: BaseException) -> bool:
    """A database connection problem (server gone, restart, network cut), not the chunk's fault."""
    return any(isinstance(e, OperationalError | InterfaceError) for e in _chain(exc))


#: errno values that mean the worker's storage is failing, not the item being processed: the
#: disk or quota is full, the filesystem went read-only, or the device reports I/O errors.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def is_object_storage_fault(exc: BaseException) -> bool:
    """The object storage (`STORAGE_URL=s3://…`) is unreachable or failing: no connection, a
    closed connection, a timeout, or a 5xx answer. A missing object (404) or a corrupt one is
    the item's, not the storage's: those fail the item."""
    try:
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError
    except ImportError:  # no S3 client installed: no object storage either
        return False
    for e in _chain(exc):
        if isinstance(e, BotoConnectionError | HTTPClientError):
            return True  # EndpointConnectionError, ConnectTimeout, ConnectionClosed, ReadTimeout
        if isinstance(e, ClientError):
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if int(status) >= 500:
                return True
    return False


def is_storage_fault(exc: BaseException) -> bool:
    """The worker's storage failed (disk full, read-only, I/O error), or the object storage it
    reads and writes through is unreachable (`is_object_storage_fault`)."""
    local = any(isinstance(e, OSError) and e.errno in STORAGE_ERRNOS for e in _chain(exc))
    return local or is_object_storage_fault(exc)


def infrastructure_fault(exc: BaseException) -> str | None:
    """ "database" or "storage" when the failure is the infrastructure's, else None (the work's)."""
    if is_infrastructure_error(exc):
        return "database"
    if is_storage_fault(exc):
        return "storage"
    return None


def storage_fault_text(exc: BaseException, worker: str, detail: str) -> str:
    full = any(
        isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) for e in _chain(exc)
    )
    what = (
        "disk full" if full
        else "object storage unreachable" if is_object_storage_fault(exc)
        else "storage failing"
    )  # fmt: skip
    return f"{what} on worker {worker} (retried {settings.JOB_MAX_INTERRUPTIONS} times): {detail}"


def backoff_seconds(failures: int, *, cap: float) -> float:
    """0.25 s, 0.5 s, 1 s, … doubling per consecutive failure, never above `cap`."""
    return float(min(cap, 0.25 * 2 ** max(0, failures - 1)))


def close_broken_connection() -> None:
    """Drop this thread's DB connection after an error, so the next query reconnects."""
    try:
        connection.close()
    except Exception:  # closing a dead socket can raise too; the handle is gone either way
        log.debug("closing a broken connection failed", exc_info=True)
