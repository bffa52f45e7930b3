"""Indexes that keep principal search and paging fast at a million principals.

Both backends get a B-tree index for every list ordering (keyset paging seeks it; on
PostgreSQL it includes `id`, so a deep OFFSET page skips rows in the index alone) and one on
UPPER(name), which the case-insensitive name check (`name__iexact`) uses.

Substring search (`icontains`) needs more than a B-tree, and each backend has its own:
- PostgreSQL: pg_trgm GIN indexes on UPPER(name), UPPER(description) (what Django's
  `icontains` compares), on address (stored lower-case, searched with `contains`) and on
  its local part (for terms that span the "@").
- SQLite: an FTS5 table with the trigram tokenizer (SQLite 3.34+), one row per principal
  holding its name, description and addresses, kept in step by triggers, so writes from
  anywhere (services, the admin, bulk inserts) update it. Where FTS5 or its trigram
  tokenizer is missing, the migration skips it and search falls back to a scan.
The model state does not know these (GIN and FTS5 are not portable), hence RunPython.
"""

from django.db import migrations, models
from django.db.models.functions import Upper

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

FTS = "accounts_principal_search"
# The addresses of one principal, space-separated, for its FTS row.
_ADDRESSES = (
    "(SELECT COALESCE(group_concat(address, ' '), '') FROM accounts_principalemail "
    "WHERE principal_id = {id})"
)
SQLITE_FORWARD = [
    f"CREATE VIRTUAL TABLE {FTS} USING fts5(name, description, addresses, tokenize='trigram')",
    f"""CREATE TRIGGER {FTS}_principal_insert AFTER INSERT ON accounts_principal BEGIN
        INSERT INTO {FTS}(rowid, name, description, addresses)
        VALUES (new.id, new.name, new.description, '');
    END""",
    f"""CREATE TRIGGER {FTS}_principal_update AFTER UPDATE OF name, description
        ON accounts_principal BEGIN
        UPDATE {FTS} SET name = new.name, description = new.description WHERE rowid = new.id;
    END""",
    f"""CREATE TRIGGER {FTS}_principal_delete AFTER DELETE ON accounts_principal BEGIN
        DELETE FROM {FTS} WHERE rowid = old.id;
    END""",
    f"""CREATE TRIGGER {FTS}_email_insert AFTER INSERT ON accounts_principalemail BEGIN
        UPDATE {FTS} SET addresses = {_ADDRESSES.format(id="new.principal_id")}
        WHERE rowid = new.principal_id;
    END""",
    f"""CREATE TRIGGER {FTS}_email_update AFTER UPDATE ON accounts_principalemail BEGIN
        UPDATE {FTS} SET addresses = {_ADDRESSES.format(id="old.principal_id")}
        WHERE rowid = old.principal_id;
        UPDATE {FTS} SET addresses = {_ADDRESSES.format(id="new.principal_id")}
        WHERE rowid = new.principal_id;
    END""",
    f"""CREATE TRIGGER {FTS}_email_delete AFTER DELETE ON accounts_principalemail BEGIN
        UPDATE {FTS} SET addresses = {_ADDRESSES.format(id="old.principal_id")}
        WHERE rowid = old.principal_id;
    END""",
    f"""INSERT INTO {FTS}(rowid, name, description, addresses)
        SELECT p.id, p.name, p.description, {_ADDRESSES.format(id="p.id")}
        FROM accounts_principal p""",
]
SQLITE_BACKWARD = [
    *(
        f"DROP TRIGGER IF EXISTS {FTS}_{name}"
        for name in (
            "principal_insert",
            "principal_update",
            "principal_delete",
            "email_insert",
            "email_update",
            "email_delete",
        )
    ),
    f"DROP TABLE IF EXISTS {FTS}",
]


def _sqlite_has_trigram_fts(cursor) -> bool:
    try:
        cursor.execute("CREATE VIRTUAL TABLE temp.h4_probe USING fts5(x, tokenize='trigram')")
    except Exception:  # noqa: BLE001 - any failure means "not available here"
        return False
    cursor.execute("DROP TABLE temp.h4_probe")
    return True


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            statements = PG_FORWARD
        elif vendor == "sqlite" and _sqlite_has_trigram_fts(cursor):
            statements = SQLITE_FORWARD
        else:
            return
        for statement in statements:
            cursor.execute(statement)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}.get(vendor, [])
    with schema_editor.connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_builtin_roles")]
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
