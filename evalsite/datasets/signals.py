"""What the datasets app announces to apps above it, which connect to these in
`AppConfig.ready()` (the datasets app does not import them: evalsite/core/providers.py describes
the layering)."""

from django.dispatch import Signal

#: Sent with `version=` (a DatasetVersion) after a new attribute revision of it commits (the
#: fairness app recomputes the reports of the version's finished runs).
attributes_revised = Signal()
