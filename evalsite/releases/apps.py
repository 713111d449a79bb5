from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "evalsite.releases"
    label = "releases"
    verbose_name = "Releases"

    def ready(self) -> None:
        from evalsite.releases import jobs  # noqa: F401  (registers the report job kind)
