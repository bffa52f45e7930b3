"""An index for case-insensitive lookups by the beginning of a principal's name (the
Django admin's search and autocomplete, `name__istartswith` / `name__iexact`).

Django writes those lookups as UPPER(name::text) LIKE UPPER('x%') on PostgreSQL, which a
text_pattern_ops index on that expression serves in any collation, and as
name LIKE 'x%' on SQLite, which only a NOCASE index serves. Neither can be declared in
Meta.indexes for both databases, so each gets its own SQL.
"""

from django.db import migrations

INDEX = "accounts_principal_name_prefix"
CREATE = {
    "postgresql": (
        f'CREATE INDEX IF NOT EXISTS {INDEX} ON accounts_principal '
        '((UPPER("name"::text)) text_pattern_ops)'
    ),
    "sqlite": f'CREATE INDEX IF NOT EXISTS {INDEX} ON accounts_principal ("name" COLLATE NOCASE)',
}


def create_index(apps, schema_editor):
    sql = CREATE.get(schema_editor.connection.vendor)
    if sql:
        schema_editor.execute(sql)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor in CREATE:
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_h7_seal_totp_secrets'),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index),
    ]
