"""An index on a principal's name for the Django admin at a million principals: its
search (the beginning of a name, any case) and its order, both through
apps.accounts.names.NameKey, which this index matches exactly.

PostgreSQL: UPPER(name) in the "C" collation, which serves LIKE 'X%' and ORDER BY in
any database collation. SQLite: name in NOCASE, which serves its case-insensitive LIKE
and ORDER BY name COLLATE NOCASE. Meta.indexes cannot declare either for both databases,
so each gets its own SQL.
"""

from django.db import migrations

INDEX = "accounts_principal_name_prefix"
CREATE = {
    "postgresql": (
        f'CREATE INDEX IF NOT EXISTS {INDEX} ON accounts_principal '
        '((UPPER("name"::text) COLLATE "C"))'
    ),
    "sqlite": f'CREATE INDEX IF NOT EXISTS {INDEX} ON accounts_principal ("name" COLLATE NOCASE)',
}


def create_index(apps, schema_editor):
    sql = CREATE.get(schema_editor.connection.vendor)
    if sql:
        schema_editor.execute(sql)
    if schema_editor.connection.vendor == "postgresql":
        # Statistics of the new expression: without them the planner guesses 0.5% of
        # the rows match any prefix and may sort a million of them.
        schema_editor.execute("ANALYZE accounts_principal")


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor in CREATE:
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_seal_totp_secrets'),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index),
    ]
