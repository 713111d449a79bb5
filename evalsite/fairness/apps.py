from django.apps import AppConfig


class FairnessConfig(AppConfig):
    name = "evalsite.fairness"
    label = "fairness"
    verbose_name = "Fairness"

    def ready(self) -> None:
        from evalsite.core.providers import PAIRED_FAIRNESS, provide
        from evalsite.datasets.signals import attributes_revised
        from evalsite.evals.signals import run_finished

        # job_create refuses a kind its own process does not know: register in every process.
        from evalsite.fairness import jobs  # noqa: F401
        from evalsite.fairness.selectors import fairness_paired_section
        from evalsite.fairness.services import fairness_after_run_done, fairness_revision_changed

        # The apps below ask for fairness numbers and announce what changes them without
        # importing this app.
        provide(PAIRED_FAIRNESS, fairness_paired_section)
        run_finished.connect(fairness_after_run_done)
        attributes_revised.connect(fairness_revision_changed)
