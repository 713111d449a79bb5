from django.apps import AppConfig


class FairnessConfig(AppConfig):
    name = "evalsite.fairness"
    label = "fairness"
    verbose_name = "Fairness"

    def ready(self) -> None:
        # job_create refuses a kind its own process does not know: register in every process.
        from evalsite.fairness import jobs  # noqa: F401
