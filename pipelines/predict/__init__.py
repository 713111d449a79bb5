"""``python -m pipelines.predict``: run a model version on a folder of photos, no Django needed.

Writes exactly what an evaluation run scores — one 8-bit greyscale ``<stem>.png`` per photo at the
photo's upright size — so ``predict`` followed by ``python -m pipelines.metrics`` on the folder
reproduces a run's numbers (``docs/contracts/model-spec.md``).
"""

from .cli import build_parser, main

__all__ = ["build_parser", "main"]
