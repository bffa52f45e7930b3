"""SQLite's substring index of principals: an FTS5 table with the trigram tokenizer, one
row per principal (name, description, addresses), kept in step by triggers, so writes from
anywhere (services, the admin, bulk inserts) update it.

Migration 0007 creates it where SQLite has FTS5 and the trigram tokenizer (3.34+); where
not, search scans. `ensure` runs after every `migrate` too: SQLite drops a table's triggers
when a later migration rebuilds the table (adding a column does), and then the index would
quietly fall behind.
"""

from __future__ import annotations

FTS = "accounts_principal_search"


# Constants only: no input reaches this SQL. A principal's addresses, space-separated:
#   (SELECT COALESCE(group_concat(address, ' '), '') FROM accounts_principalemail
#    WHERE principal_id = <the principal>)
CREATE = [
    "CREATE VIRTUAL TABLE accounts_principal_search "
    "USING fts5(name, description, addresses, tokenize='trigram')",
    """CREATE TRIGGER accounts_principal_search_principal_insert
        AFTER INSERT ON accounts_principal BEGIN
        INSERT INTO accounts_principal_search(rowid, name, description, addresses)
        VALUES (new.id, new.name, new.description, '');
    END""",
    """CREATE TRIGGER accounts_principal_search_principal_update
        AFTER UPDATE OF name, description ON accounts_principal BEGIN
        UPDATE accounts_principal_search SET name = new.name, description = new.description
        WHERE rowid = new.id;
    END""",
    """CREATE TRIGGER accounts_principal_search_principal_delete
        AFTER DELETE ON accounts_principal BEGIN
        DELETE FROM accounts_principal_search WHERE rowid = old.id;
    END""",
    """CREATE TRIGGER accounts_principal_search_email_insert
        AFTER INSERT ON accounts_principalemail BEGIN
        UPDATE accounts_principal_search SET addresses = (
            SELECT COALESCE(group_concat(address, ' '), '') FROM accounts_principalemail
            WHERE principal_id = new.principal_id
        ) WHERE rowid = new.principal_id;
    END""",
    """CREATE TRIGGER accounts_principal_search_email_update
        AFTER UPDATE ON accounts_principalemail BEGIN
        UPDATE accounts_principal_search SET addresses = (
            SELECT COALESCE(group_concat(address, ' '), '') FROM accounts_principalemail
            WHERE principal_id = old.principal_id
        ) WHERE rowid = old.principal_id;
        UPDATE accounts_principal_search SET addresses = (
            SELECT COALESCE(group_concat(address, ' '), '') FROM accounts_principalemail
            WHERE principal_id = new.principal_id
        ) WHERE rowid = new.principal_id;
    END""",
    """CREATE TRIGGER accounts_principal_search_email_delete
        AFTER DELETE ON accounts_principalemail BEGIN
        UPDATE accounts_principal_search SET addresses = (
            SELECT COALESCE(group_concat(address, ' '), '') FROM accounts_principalemail
            WHERE principal_id = old.principal_id
        ) WHERE rowid = old.principal_id;
    END""",
    """INSERT INTO accounts_principal_search(rowid, name, description, addresses)
        SELECT p.id, p.name, p.description, (
            SELECT COALESCE(group_concat(address, ' '), '') FROM accounts_principalemail
            WHERE principal_id = p.id
        ) FROM accounts_principal p""",
]
TRIGGER_NAMES = (
    "principal_insert",
    "principal_update",
    "principal_delete",
    "email_insert",
    "email_update",
    "email_delete",
)
TRIGGERS = [f"{FTS}_{name}" for name in TRIGGER_NAMES]
DROP = [
    *(f"DROP TRIGGER IF EXISTS {trigger}" for trigger in TRIGGERS),
    f"DROP TABLE IF EXISTS {FTS}",
]


def available(cursor) -> bool:
    """FTS5 with the trigram tokenizer is compiled into this SQLite."""
    try:
        cursor.execute("CREATE VIRTUAL TABLE temp.fts_probe USING fts5(x, tokenize='trigram')")
    except Exception:  # noqa: BLE001 - any failure means "not available here"
        return False
    cursor.execute("DROP TABLE temp.fts_probe")
    return True


def create(cursor) -> None:
    if available(cursor):
        for statement in CREATE:
            cursor.execute(statement)


def drop(cursor) -> None:
    for statement in DROP:
        cursor.execute(statement)


def ensure(connection) -> None:
    """Where the index exists but a trigger is missing, make it again from the tables."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE %s",
            [f"{FTS}%"],
        )
        present = {row[0] for row in cursor.fetchall()}
        if FTS in present and not present.issuperset(TRIGGERS):
            drop(cursor)
            create(cursor)
