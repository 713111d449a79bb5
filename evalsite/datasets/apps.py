from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "evalsite.datasets"
    label = "datasets"
    verbose_name = "Held-out sets"
