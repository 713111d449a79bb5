from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "evalsite.evals"
    label = "evals"
    verbose_name = "Evaluation runs"
