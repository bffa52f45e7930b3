from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


def _search_index_intact(using: str, **kwargs) -> None:
    from apps.accounts.principals import search_index

    search_index.ensure(connections[using])


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"

    def ready(self) -> None:
        # SQLite drops a table's triggers when a migration rebuilds it: make them again.
        post_migrate.connect(_search_index_intact, sender=self)
