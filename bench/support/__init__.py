"""Helpers shared by the bench scripts (a package, so `make bench`'s `bench/*.py` skips it)."""
