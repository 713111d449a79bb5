from evalsite.core.errors import NotFound


class ReleaseError(Exception):
    """A report or decision cannot be made; the message says why and what to do."""

    retryable = False  # the job primitive does not retry a chunk that raised this
    exit_code = 1  # `release_decide` / `release_report` exit status


class EvidenceMoved(ReleaseError):
    """A decision is refused because its report's evidence moved on or does not match (stale
    report, baseline no longer production, or the report already carries a decision)."""

    exit_code = 5


class OverrideRequired(ReleaseError):
    """Approving a verdict other than pass needs a written override reason."""

    exit_code = 6


class ReportNotFound(NotFound):
    """No release report (or release gate) with that id (pages answer 404, the API a 404 body)."""
