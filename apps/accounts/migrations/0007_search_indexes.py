"""Indexes that keep principal search and paging fast at a million principals.

Both backends get a B-tree index for every list ordering (keyset paging seeks it; on
PostgreSQL it includes `id`, so a deep OFFSET page skips rows in the index alone) and one on
UPPER(name), which the case-insensitive name check (`name__iexact`) uses.

Substring search (`icontains`) needs more than a B-tree, and each backend has its own:
- PostgreSQL: pg_trgm GIN indexes on UPPER(name), UPPER(description) (what Django's
  `icontains` compares), on address (stored lower-case, searched with `contains`) and on
  its local part (for terms that span the "@").
- SQLite: an FTS5 table with the trigram tokenizer (SQLite 3.34+) kept in step by
  triggers: apps.accounts.principals.search_index, which also makes the triggers again
  after any later migration that rebuilds the tables. Where FTS5 or its trigram tokenizer
  is missing, there is no such table and search scans.
The model state does not know these (GIN and FTS5 are not portable), hence RunPython.
"""

from django.db import migrations, models
from django.db.models.functions import Upper

from apps.accounts.principals import search_index

PG_FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS accounts_principal_name_trgm "
    "ON accounts_principal USING gin (UPPER(name) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS accounts_principal_description_trgm "
    "ON accounts_principal USING gin (UPPER(description) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS accounts_principalemail_address_trgm "
    "ON accounts_principalemail USING gin (address gin_trgm_ops)",
    # A search spanning the "@" looks up the local part here: the trigrams of a domain
    # every address shares would make the index above read all of its posting lists.
    "CREATE INDEX IF NOT EXISTS accounts_principalemail_local_trgm "
    "ON accounts_principalemail USING gin (split_part(address::text, '@', 1) gin_trgm_ops)",
]
PG_BACKWARD = [
    "DROP INDEX IF EXISTS accounts_principal_name_trgm",
    "DROP INDEX IF EXISTS accounts_principal_description_trgm",
    "DROP INDEX IF EXISTS accounts_principalemail_address_trgm",
    "DROP INDEX IF EXISTS accounts_principalemail_local_trgm",
]

def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            for statement in PG_FORWARD:
                cursor.execute(statement)
        elif vendor == "sqlite":
            search_index.create(cursor)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            for statement in PG_BACKWARD:
                cursor.execute(statement)
        elif vendor == "sqlite":
            search_index.drop(cursor)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0006_key_reach_app_password_lookup_lockout")]
    operations = [
        migrations.RemoveIndex(model_name="principal", name="accounts_pr_tenant__f0e169_idx"),
        migrations.RemoveIndex(model_name="principal", name="accounts_pr_type_bd80b8_idx"),
        migrations.AddIndex(
            model_name="principal",
            index=models.Index(
                fields=["tenant", "type", "name"], include=["id"], name="principal_tenant_type_name"
            ),
        ),
        migrations.AddIndex(
            model_name="principal",
            index=models.Index(fields=["type", "name"], include=["id"], name="principal_type_name"),
        ),
        migrations.AddIndex(
            model_name="principal",
            index=models.Index(fields=["tenant", "name"], include=["id"], name="principal_tenant_name"),
        ),
        migrations.AddIndex(
            model_name="principal",
            index=models.Index(
                fields=["tenant", "created_at", "id"], name="principal_tenant_created"
            ),
        ),
        migrations.AddIndex(
            model_name="principal",
            index=models.Index(Upper("name"), name="principal_name_upper"),
        ),
        migrations.RunPython(forward, backward, elidable=False),
    ]
