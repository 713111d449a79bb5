from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "models"
    label = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        # Register the registry's job kinds in every process (web, CLI, worker): job_create
        # refuses a kind its own process does not know.
        from models import tasks  # noqa: F401
