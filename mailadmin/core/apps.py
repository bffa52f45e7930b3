from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "mailadmin.core"
    label = "core"

    def ready(self) -> None:
        import mailadmin.api.schema  # noqa: F401 - registers the OpenAPI auth extensions
