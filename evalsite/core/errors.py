"""Domain errors every layer may raise, the one table that maps them to HTTP statuses, and the
one JSON error shape every JSON endpoint answers.

`NotFound`: a selector was asked for a row that does not exist (each app subclasses it:
`RunNotFound`, `ReportNotFound`, `VersionNotFound`, …). Its message names what was asked for.
Pages answer the 404 page (`evalsite.core.middleware.NotFoundMiddleware`), the REST API a 404
error body (`evalsite.core.middleware.api_exception_handler`), commands print the message and
exit non-zero (`command_error`) — none of them needs to know about the others, and a selector
never raises `Http404`.

The error body, for the REST API and the rating pages' JSON alike:
``{"error": {"code": "not_found", "message": "No run #4.", "fields": {"model": ["…"]}}}`` —
`code` a stable word a program branches on, `message` for a person, `fields` only when named
input fields are wrong. The release doors add the command's `exit_code` beside `error`. An
unexpected exception answers 500 with a fixed message: its text may hold paths or SQL.
"""

from __future__ import annotations

from typing import Any

from django.core.management import CommandError

from pipelines.parse import InvalidInput


class NotFound(LookupError):
    """No such row; the message says which."""


class Conflict(Exception):
    """A well-formed request the current state refuses (a closed campaign); retrying the same
    request cannot succeed until the state changes. The message says what is in the way."""


class Refused(ValueError):
    """A request the domain refuses as asked (a rating of the wrong kind); the message says what
    to change."""


#: Error class -> (HTTP status, code): the one mapping pages, the API and commands share.
#: First match wins: a class that is both a Conflict and a Refused answers 409.
STATUS_OF: tuple[tuple[type[Exception], int, str], ...] = (
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (Refused, 400, "refused"),
    (InvalidInput, 400, "invalid"),
)

#: The message of an unexpected error (500): never the exception's own text.
SERVER_ERROR = "the server could not handle this request; nothing was stored"

#: HTTP status -> code, for answers that come from a status rather than an error class.
CODE_OF_STATUS = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
}


def status_of(exc: BaseException) -> tuple[int, str] | None:
    """(HTTP status, code) of a domain error, None for any other exception."""
    for cls, status, code in STATUS_OF:
        if isinstance(exc, cls):
            return status, code
    return None


def error_body(
    status: int, message: str, *, code: str = "", fields: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """The one JSON error document (module docstring); `code` defaults to the status's."""
    error: dict[str, Any] = {"code": code or CODE_OF_STATUS.get(status, "error")}
    error["message"] = message
    if fields:
        error["fields"] = fields
    return {"error": error}


def command_error(exc: Exception, *, returncode: int = 1, prefix: str = "") -> CommandError:
    """What a management command raises for a domain error: Django prints `CommandError: <the
    message>` (no traceback) and exits with `returncode` (each command's documented code)."""
    return CommandError(f"{prefix}{exc}", returncode=returncode)


__all__ = [
    "CODE_OF_STATUS",
    "SERVER_ERROR",
    "STATUS_OF",
    "Conflict",
    "NotFound",
    "Refused",
    "command_error",
    "error_body",
    "status_of",
]
