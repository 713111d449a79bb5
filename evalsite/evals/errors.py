"""Errors of the eval app whose message is shown to the user as is (CLI, form, API)."""

from evalsite.core.errors import NotFound


class EvalError(Exception):
    """A run cannot be started or found; the message says which input and what to do."""


class RunNotFound(NotFound):
    """No run (or no result of a run) as asked; pages answer 404, commands print it."""
