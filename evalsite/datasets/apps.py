from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "evalsite.datasets"
    label = "datasets"
    verbose_name = "Held-out sets"

    def ready(self) -> None:
        from evalsite.datasets import jobs  # noqa: F401 - registers the datasets.import job kind
