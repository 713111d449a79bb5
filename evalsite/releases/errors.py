class ReleaseError(Exception):
    """A report or decision cannot be made; the message says why and what to do."""

    retryable = False  # the job primitive does not retry a chunk that raised this
