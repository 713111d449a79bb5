from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "evalsite.evals"
    label = "evals"
    verbose_name = "Evaluation runs"

    def ready(self) -> None:
        # job_create refuses a kind its own process does not know: register in every process.
        from evalsite.core.providers import RUNS_OF_MODEL_VERSION, provide
        from evalsite.evals import jobs  # noqa: F401
        from evalsite.evals.imports import jobs as import_jobs  # noqa: F401
        from evalsite.evals.selectors import runs_for_model_version

        # The registry's version page lists runs without importing this app.
        provide(RUNS_OF_MODEL_VERSION, runs_for_model_version)
