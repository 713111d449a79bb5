"""Cross-app providers fail loudly: a missing one names what is registered; the evals app
registers the runs of a model version, which the registry's version page lists."""

from __future__ import annotations

import pytest

from evalsite.core import providers
from evalsite.core.providers import RUNS_OF_MODEL_VERSION, ProviderMissing, provide, provider
from evalsite.evals.selectors import runs_for_model_version

pytestmark = pytest.mark.no_services


def test_the_evals_app_registers_the_runs_provider_at_startup() -> None:
    assert provider(RUNS_OF_MODEL_VERSION) is runs_for_model_version


def test_a_missing_provider_raises_and_names_the_registered_ones() -> None:
    with pytest.raises(ProviderMissing, match=r"no provider 'nope'.*runs_of_model_version"):
        provider("nope")


def test_a_second_provider_for_one_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers, "_PROVIDERS", {})
    provide("x", len)
    provide("x", len)  # the same function again (ready() twice) is fine
    with pytest.raises(ValueError, match="already registered"):
        provide("x", print)
