"""What the evals app announces to apps above it, which connect to these in `AppConfig.ready()`
(the evals app does not import them: evalsite/core/providers.py describes the layering)."""

from django.dispatch import Signal

#: Sent with `run=` (an EvalRun) once a run is stored done with its summary. Receivers must not
#: raise: the run is finished whatever they do (the fairness app enqueues the run's report).
run_finished = Signal()
