"""Planner statistics for tests that load many rows at once."""

from __future__ import annotations

from django.db import connection
from django.db.models import Model


def analyze(*models: type[Model]) -> None:
    """ANALYZE the models' tables on PostgreSQL, as autovacuum does after a bulk load.

    A test's rows are uncommitted, so autovacuum never sees them, and the planner keeps the
    statistics of whatever the suite left before (often an empty table): it then plans for
    one row and may probe a trigram index once per row of a join. ANALYZE inside the
    test's transaction samples its own rows, and its statistics roll back with it.
    """
    if connection.vendor != "postgresql":
        return
    from apps.accounts.models import Principal
    from apps.accounts.principals import search_rum

    names = [m._meta.db_table for m in models]
    if Principal in models and search_rum.usable(connection):
        names.append(search_rum.TABLE)  # its triggers filled it with the principals
    tables = ", ".join(connection.ops.quote_name(name) for name in names)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")
