"""Entry point for ``python -m pipelines.synth`` (see :mod:`pipelines.synth.cli`)."""

import sys

from .cli import main

sys.exit(main())
