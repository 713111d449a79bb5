"""Entry point of ``python -m pipelines.predict`` (see :mod:`pipelines.predict.cli`)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
