"""Data of this app."""
