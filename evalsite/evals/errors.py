"""Errors of the eval app whose message is shown to the user as is (CLI, form, API)."""


class EvalError(Exception):
    """A run cannot be started or found; the message says which input and what to do."""
