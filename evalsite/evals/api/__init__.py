"""REST API for model teams' CI: start a run, poll it, fetch its results (token auth)."""
