"""The storage tests run chunks in process too (the filesystem reference of the end-to-end runs)."""

from tests.evals.conftest import run_inline

__all__ = ["run_inline"]
