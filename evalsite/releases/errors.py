from evalsite.core.errors import NotFound


class ReleaseError(Exception):
    """A report or decision cannot be made; the message says why and what to do."""

    retryable = False  # the job primitive does not retry a chunk that raised this


class ReportNotFound(NotFound):
    """No release report with that id (pages answer 404, the API a 404 body)."""
