"""Write services of the release app (keyword-only, own their transactions)."""
