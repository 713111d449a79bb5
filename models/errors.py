"""Errors the registry's doors turn into a form error, an HTTP 400/403/404 or a CLI message."""

from __future__ import annotations

from evalsite.core.errors import NotFound


class RegistryError(ValueError):
    """A request the registry refuses (bad name, immutable version, unknown parent, ...).

    The message is user-facing: it names the thing and what to do about it.
    """


class VersionNotFound(NotFound):
    """A family, `family:version`, `family:alias` or version id names nothing; the message says
    which (and, resolving a reference, lists what exists)."""


class ConversionFailed(RuntimeError):
    """A converter refused the source model; retrying gives the same answer."""

    retryable = False  # read by evalsite.core.tasks.run_chunk
