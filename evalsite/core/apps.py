from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "evalsite.core"
    label = "core"
    verbose_name = "Platform core"
