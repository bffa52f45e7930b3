from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "mailadmin.core"
    label = "core"

    def ready(self) -> None:
        import mailadmin.api.schema  # noqa: F401 - registers the OpenAPI auth extensions
        import mailadmin.converters  # noqa: F401 - registers <id:...> before any URLconf loads
