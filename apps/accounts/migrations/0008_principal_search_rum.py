"""PostgreSQL with the `rum` extension available: the name-ordered search table of
apps.accounts.principals.search_rum (table, functions, triggers, RUM index), filled from
the principals. Elsewhere (SQLite, PostgreSQL without the package) nothing: search takes
the pg_trgm path. `manage.py principal_search_index` does the same after a later install.
"""

from django.db import migrations

from apps.accounts.principals import search_rum


def forward(apps, schema_editor):
    search_rum.setup(schema_editor.connection)


def backward(apps, schema_editor):
    search_rum.teardown(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0007_search_indexes")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
