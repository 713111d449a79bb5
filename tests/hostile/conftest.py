"""Fixtures of the hostile-input tests."""

from tests.evals import conftest as evals_conftest

# The eval tests' fake model session and inline chunk runner.
fake_model = evals_conftest.fake_model
run_inline = evals_conftest.run_inline
