"""Cross-app providers fail loudly: a missing one names what is registered; the evals app
registers the runs of a model version, which the registry's version page lists; the fairness app
answers the run comparison's fairness section and hears of finished runs and new labels."""

from __future__ import annotations

import pytest

from evalsite.core import providers
from evalsite.core.providers import (
    PAIRED_FAIRNESS,
    RUNS_OF_MODEL_VERSION,
    Provided,
    ProviderMissing,
    provide,
    provider,
)
from evalsite.datasets.models import DatasetVersion
from evalsite.datasets.signals import attributes_revised
from evalsite.evals.models import EvalRun
from evalsite.evals.selectors import runs_for_model_version
from evalsite.evals.signals import run_finished
from evalsite.fairness.selectors import fairness_paired_section

pytestmark = pytest.mark.no_services


def test_the_evals_app_registers_the_runs_provider_at_startup() -> None:
    assert provider(RUNS_OF_MODEL_VERSION) is runs_for_model_version


def test_the_fairness_app_answers_and_listens_to_the_apps_below_it_at_startup() -> None:
    assert provider(PAIRED_FAIRNESS) is fairness_paired_section
    assert run_finished.has_listeners(EvalRun)
    assert attributes_revised.has_listeners(DatasetVersion)


def test_a_missing_provider_raises_and_names_the_registered_ones() -> None:
    with pytest.raises(ProviderMissing, match=r"no provider 'nope'.*runs_of_model_version"):
        provider(Provided("nope"))


def test_a_second_provider_for_one_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers, "_PROVIDERS", {})
    provide(Provided("x"), len)
    provide(Provided("x"), len)  # the same function again (ready() twice) is fine
    with pytest.raises(ValueError, match="already registered"):
        provide(Provided("x"), print)
