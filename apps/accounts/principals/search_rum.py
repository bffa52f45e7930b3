"""PostgreSQL's name-ordered substring index of principals: a side table with a RUM index.

Why RUM (the `rum` extension by Postgres Professional, Debian's `postgresql-NN-rum`):
pg_trgm's GIN indexes find the matches of a term, but in table order, so the first page by
name of a common term clustered away from the list's start ("marie" in a million names)
needs every match read and sorted. A RUM index stores a value beside each posting (here a
key that grows with the name) and hands the matches back ordered by it, so that page reads
a few hundred rows. It is optional: without the extension nothing here exists and search
takes the pg_trgm path as before.

One row per principal, kept exact by statement-level triggers on the principal and address
tables (so the ORM, bulk_create, COPY, the admin and raw SQL all keep it in step):

- `hay`: what search matches against, upper-cased as Django's `icontains` compares:
  UPPER(name), UPPER(description) and UPPER(address) of each address, joined by SEP (a
  control character no searched term holds, so a term never matches across two fields).
- `grams`: the hashes of every 3-character substring of `hay`, plus hashes naming the
  tenant, the tenant and type, and the type, so a small tenant's search never walks a big
  tenant's postings.
- `key`: a number that never decreases as the name grows in byte order (see `KEY`).

`setup` is idempotent: migration 0008 runs it where the extension is available, and
`manage.py principal_search_index` runs it after a later install of the package.
"""

# SQL here is built from this module's constants only; input is always a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from typing import Any

from django.db import DatabaseError, transaction

EXTENSION = "rum"
TABLE = "accounts_principal_rum"
INDEX = "accounts_principal_rum_grams"
SEP = "\x01"
# Collations whose order is that of the bytes (UTF-8: of the code points): the order the
# key follows and Python's str comparison too.
BYTE_ORDER = {"C", "POSIX", "C.UTF-8", "C.utf8"}

# 6 bits per character for 8 characters, 5 for a 9th: 53 bits, what a float8 (RUM's
# distance) holds exactly. The characters of ALPHABET (in byte order) code as their
# position (1-40), the end of the name as 0. The first other character codes as the last
# alphabet character below it, and every position after it as the maximum: names that
# differ only there share a key (a tie), but a greater name never gets a smaller key.
ALPHABET = "-.0123456789@_abcdefghijklmnopqrstuvwxyz"
KEY = f"""
CREATE OR REPLACE FUNCTION {TABLE}_key(name text) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    alphabet constant text := '{ALPHABET}';
    result bigint := 0;
    code int;
    c text;
    past boolean := false;
BEGIN
    FOR i IN 1..9 LOOP
        IF past THEN
            code := 63;
        ELSE
            c := substr(name, i, 1);
            code := CASE WHEN c = '' THEN 0 ELSE strpos(alphabet, c) END;
            IF code = 0 AND c <> '' THEN
                code := (SELECT count(*) FROM regexp_split_to_table(alphabet, '') a
                         WHERE a < c COLLATE "C");
                past := true;
            END IF;
        END IF;
        result := CASE WHEN i < 9 THEN result * 64 + code ELSE result * 32 + code / 2 END;
    END LOOP;
    RETURN result;
END $$"""
KEY_MAX = 2**53 - 1

GRAMS = f"""
CREATE OR REPLACE FUNCTION {TABLE}_grams(hay text) RETURNS int4[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT COALESCE(array_agg(DISTINCT hashtext(substr(hay, i, 3))), '{{}}')
    FROM generate_series(1, length(hay) - 2) i
$$"""
SCOPE = f"""
CREATE OR REPLACE FUNCTION {TABLE}_scope(tenant bigint, type text) RETURNS int4[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY[
        hashtext('tenant ' || COALESCE(tenant::text, '-')),
        hashtext('tenant ' || COALESCE(tenant::text, '-') || ' type ' || type),
        hashtext('type ' || type)
    ]
$$"""
# The row of each principal of `ids`; a principal that is gone loses its row.
#
# `lock` first locks the principals (in id order: no deadlock between two refreshes), so
# that two transactions changing one principal's addresses at once refresh its row one
# after the other, the second seeing the first's addresses: each statement of this
# (volatile) function reads a snapshot taken after the one before it. A principal just
# inserted needs no lock (no one else sees it yet): a COPY of a million skips writing a
# lock into every row.
REFRESH = f"""
CREATE OR REPLACE FUNCTION {TABLE}_refresh(ids bigint[], lock boolean DEFAULT true)
RETURNS void LANGUAGE sql AS $$
    SELECT 1 FROM accounts_principal p WHERE lock AND p.id = ANY(ids)
        ORDER BY p.id FOR NO KEY UPDATE;
    DELETE FROM {TABLE} r WHERE r.principal_id = ANY(ids)
        AND NOT EXISTS (SELECT 1 FROM accounts_principal p WHERE p.id = r.principal_id);
    INSERT INTO {TABLE} (principal_id, tenant_id, type, name, key, hay, grams)
    SELECT p.id, p.tenant_id, p.type, p.name, {TABLE}_key(p.name), h.hay,
           {TABLE}_grams(h.hay) || {TABLE}_scope(p.tenant_id, p.type)
    FROM unnest(ids) u(id)
    JOIN accounts_principal p ON p.id = u.id
    CROSS JOIN LATERAL (SELECT upper(p.name) || chr(1) || upper(p.description) || COALESCE(
        (SELECT string_agg(chr(1) || upper(e.address), '' ORDER BY e.position, e.id)
         FROM accounts_principalemail e WHERE e.principal_id = p.id), '') AS hay) h
    ON CONFLICT (principal_id) DO UPDATE SET
        tenant_id = excluded.tenant_id, type = excluded.type, name = excluded.name,
        key = excluded.key, hay = excluded.hay, grams = excluded.grams
    WHERE ({TABLE}.tenant_id, {TABLE}.type, {TABLE}.name, {TABLE}.hay)
        IS DISTINCT FROM (excluded.tenant_id, excluded.type, excluded.name, excluded.hay);
$$"""

# (trigger, table, event, transition tables, body). Statement-level: a COPY of a million
# rows runs each once, over its transition table. Enabled ALWAYS (see `_trigger_sql`).
TRIGGERS = [
    (
        "principal_insert",
        "accounts_principal",
        "INSERT",
        "NEW TABLE AS changed",
        f"PERFORM {TABLE}_refresh(ARRAY(SELECT id FROM changed), false);",
    ),
    (
        "principal_update",
        "accounts_principal",
        "UPDATE",
        "OLD TABLE AS before NEW TABLE AS changed",
        f"""PERFORM {TABLE}_refresh(ARRAY(
            SELECT n.id FROM changed n JOIN before o ON o.id = n.id
            WHERE (n.name, n.description, n.tenant_id, n.type)
                IS DISTINCT FROM (o.name, o.description, o.tenant_id, o.type)));""",
    ),
    (
        "principal_delete",
        "accounts_principal",
        "DELETE",
        "OLD TABLE AS before",
        f"DELETE FROM {TABLE} WHERE principal_id IN (SELECT id FROM before);",
    ),
    ("principal_truncate", "accounts_principal", "TRUNCATE", "", f"DELETE FROM {TABLE};"),
    (
        "email_insert",
        "accounts_principalemail",
        "INSERT",
        "NEW TABLE AS changed",
        f"PERFORM {TABLE}_refresh(ARRAY(SELECT DISTINCT principal_id FROM changed));",
    ),
    (
        "email_update",
        "accounts_principalemail",
        "UPDATE",
        "OLD TABLE AS before NEW TABLE AS changed",
        f"""PERFORM {TABLE}_refresh(ARRAY(
            SELECT principal_id FROM changed UNION SELECT principal_id FROM before));""",
    ),
    (
        "email_delete",
        "accounts_principalemail",
        "DELETE",
        "OLD TABLE AS before",
        f"PERFORM {TABLE}_refresh(ARRAY(SELECT DISTINCT principal_id FROM before));",
    ),
    (
        "email_truncate",
        "accounts_principalemail",
        "TRUNCATE",
        "",
        f"PERFORM {TABLE}_refresh(ARRAY(SELECT id FROM accounts_principal));",
    ),
]


def _trigger_sql(name: str, table: str, event: str, transition: str, body: str) -> list[str]:
    function = f"{TABLE}_{name}"
    referencing = f"REFERENCING {transition} " if transition else ""
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n    {body}\n    RETURN NULL;\nEND $$",
        f"DROP TRIGGER IF EXISTS {function} ON {table}",
        f"CREATE TRIGGER {function} AFTER {event} ON {table} {referencing}"
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        # Also under session_replication_role = replica, which bulk loads set to skip
        # foreign key checks (the bench's COPY, pg_restore --disable-triggers): an
        # ordinary trigger would not fire there, and the table would silently go stale.
        f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {function}",
    ]


# The page query. RUM intersects the whole posting lists of the grams it is given before
# the first row comes out (so each gram costs its number of rows: "marie"'s three, 80,000
# postings of a million, 20 ms; a gram every row holds, 1,000,000, 300 ms), then reads the
# rows in key order, checking the pattern on each. So the grams asked are the rarest ones
# by the column's statistics (ANALYZE's most common elements) whose postings add up to at
# most POSTINGS; when even the rarest has more, the function answers one row of NULLs
# ("not here": a term every row holds is the window plan's). Without statistics (a new,
# small table) it asks all. Each row carries `estimate`, the postings of the rarest gram
# asked (no more rows can match; NULL without statistics): "marie"'s is 20,066 for 19,200
# matches, where the planner's estimate of the LIKE conditions said 516,000.
#
# The planner, left to itself, prefers a bitmap scan and a sort of every match (the
# estimate of `@>` is rough); the function's own settings leave it the ordered index
# scan only. `after` is the name to start after (None: the list's end), read upwards
# (`ascending`) or downwards; rows whose key ties with `after`'s come too, for the caller
# to drop by name.
POSTINGS = 200_000
MAX_GRAMS = 4
SEARCH = f"""
CREATE OR REPLACE FUNCTION {TABLE}_search(
    term text, pattern text, scoped boolean, tenant bigint, types text[], after text,
    ascending boolean, n integer
) RETURNS TABLE (principal_id bigint, key bigint, name text, estimate bigint)
LANGUAGE plpgsql STABLE
SET enable_bitmapscan = off
SET enable_seqscan = off
AS $$
DECLARE
    candidates int4[] := {TABLE}_grams(upper(term)) || CASE
        WHEN scoped AND cardinality(types) = 1 THEN ({TABLE}_scope(tenant, types[1]))[2:2]
        WHEN scoped THEN ({TABLE}_scope(tenant, ''))[1:1]
        WHEN cardinality(types) = 1 THEN ({TABLE}_scope(NULL, types[1]))[3:3]
        ELSE '{{}}'::int4[] END;
    wanted int4[] := '{{}}';
    elems int4[];
    freqs real[];
    rows float8;
    spent float8 := 0;
    gram int4;
    postings float8;
    guess bigint;
    start bigint;
BEGIN
    SELECT s.most_common_elems::text::int4[], s.most_common_elem_freqs INTO elems, freqs
    FROM pg_stats s
    WHERE s.schemaname = current_schema() AND s.tablename = '{TABLE}' AND s.attname = 'grams';
    IF elems IS NULL THEN
        wanted := candidates;
    ELSE
        SELECT c.reltuples INTO rows FROM pg_class c WHERE c.oid = '{TABLE}'::regclass;
        -- A gram that is not among the most common is at most as common as the least.
        FOR gram, postings IN
            SELECT g, COALESCE(freqs[array_position(elems, g)], freqs[cardinality(elems) + 1])
                * rows
            FROM unnest(candidates) g ORDER BY 2
        LOOP
            EXIT WHEN spent + postings > {POSTINGS} OR cardinality(wanted) = {MAX_GRAMS};
            wanted := wanted || gram;
            spent := spent + postings;
            guess := LEAST(guess, ceil(postings)::bigint);
        END LOOP;
        IF cardinality(wanted) = 0 THEN
            RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::text, NULL::bigint;
            RETURN;
        END IF;
    END IF;
    IF ascending THEN
        start := COALESCE({TABLE}_key(after), 0);
        RETURN QUERY SELECT r.principal_id, r.key, r.name, guess FROM {TABLE} r
            WHERE r.grams @> wanted AND r.hay LIKE upper(pattern) AND r.key >= start
                AND (NOT scoped OR r.tenant_id = tenant)
                AND (types IS NULL OR r.type = ANY(types))
            ORDER BY r.key |=> start LIMIT n;
    ELSE
        start := COALESCE({TABLE}_key(after), {KEY_MAX});
        RETURN QUERY SELECT r.principal_id, r.key, r.name, guess FROM {TABLE} r
            WHERE r.grams @> wanted AND r.hay LIKE upper(pattern) AND r.key <= start
                AND (NOT scoped OR r.tenant_id = tenant)
                AND (types IS NULL OR r.type = ANY(types))
            ORDER BY r.key <=| start LIMIT n;
    END IF;
END $$"""

CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    principal_id bigint PRIMARY KEY,
    tenant_id bigint,
    type varchar(16) NOT NULL,
    name text NOT NULL,
    key bigint NOT NULL,
    hay text NOT NULL,
    grams int4[] NOT NULL
)"""
CREATE_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} "
    "USING rum (grams rum_anyarray_addon_ops, key) "
    "WITH (attach = 'key', to = 'grams', order_by_attach = 't')"
)
FUNCTIONS = [KEY, GRAMS, SCOPE, REFRESH, SEARCH]
SEARCH_SIGNATURE = f"{TABLE}_search(text, text, boolean, bigint, text[], text, boolean, integer)"


def available(cursor, extension: str = EXTENSION) -> bool:
    """The extension's package is installed on the server (it may not be created yet)."""
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = %s", [extension])
    return cursor.fetchone() is not None


def setup(connection, extension: str = EXTENSION) -> bool:
    """Create (or bring up to date) the extension, table, functions, triggers and index,
    and fill the table from the principals: False, doing nothing, where the extension is
    not available or may not be created (a role without the right)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        if not available(cursor, extension):
            return False
        try:
            with transaction.atomic(using=connection.alias):
                cursor.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
        except DatabaseError:
            return False
        cursor.execute(CREATE_TABLE)
        cursor.execute(f"DROP FUNCTION IF EXISTS {SEARCH_SIGNATURE}")  # its type may change
        for statement in FUNCTIONS:
            cursor.execute(statement)
        for trigger in TRIGGERS:
            for statement in _trigger_sql(*trigger):
                cursor.execute(statement)
        # Filled before the index exists when it is new: one build beats a million inserts.
        cursor.execute(f"SELECT {TABLE}_refresh(ARRAY(SELECT id FROM accounts_principal), false)")
        cursor.execute(
            f"DELETE FROM {TABLE} r WHERE NOT EXISTS ("
            "SELECT 1 FROM accounts_principal p WHERE p.id = r.principal_id)"
        )
        cursor.execute(CREATE_INDEX)
    forget()
    return True


def teardown(connection) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for name, table, *_ in TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_{name} ON {table}")
            cursor.execute(f"DROP FUNCTION IF EXISTS {TABLE}_{name}()")
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        functions = ("key(text)", "grams(text)", "scope(bigint, text)", "refresh(bigint[], bool)")
        for function in functions:
            cursor.execute(f"DROP FUNCTION IF EXISTS {TABLE}_{function}")
        cursor.execute(f"DROP FUNCTION IF EXISTS {SEARCH_SIGNATURE}")
    forget()


# --- whether search may use it ----------------------------------------------------------

# Per process, like SQLite's FTS table check: a web process started before the table
# existed uses it after a restart (a re-check now and then would add queries to random
# requests, and break the query counts tests pin).
_usable: dict[str, bool] = {}


def forget() -> None:
    _usable.clear()


def usable(connection) -> bool:
    """The table exists and the list's order is the key's: the name column sorts by byte
    (C, POSIX, C.UTF-8), and UPPER folds ASCII as Python does (not so under a Turkish
    LC_CTYPE, where the address match, which Django checks on the lower-cased term, and
    the name match, on the term as typed, would fold 'i' differently)."""
    if connection.vendor != "postgresql":
        return False
    name = str(connection.settings_dict["NAME"])
    if name not in _usable:
        _usable[name] = _check(connection)
    return _usable[name]


def _check(connection) -> bool:
    provider = "d.datlocprovider" if connection.pg_version >= 150000 else "'c'"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT to_regclass('{TABLE}') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return False
        cursor.execute(
            f"SELECT CASE WHEN a.attcollation = 100 THEN {provider}::text ELSE "
            "c.collprovider::text END, "
            "CASE WHEN a.attcollation = 100 THEN d.datcollate ELSE c.collcollate END, "
            "upper('i') = 'I' AND lower('I') = 'i' "
            "FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation "
            "JOIN pg_database d ON d.datname = current_database() "
            "WHERE a.attrelid = 'accounts_principal'::regclass AND a.attname = 'name'"
        )
        row = cursor.fetchone()
    return row is not None and row[0] == "c" and row[1] in BYTE_ORDER and bool(row[2])


def search(
    connection,
    *,
    term: str,
    tenant: int | None,
    scoped: bool,
    types: list[str] | None,
    after: str | None,
    ascending: bool,
    count: int,
) -> tuple[list[tuple[Any, int, str]], int | None] | None:
    """Up to `count` matches as (pk, key, name), in key order from `after` on, and an
    estimate of all the matches (None: no statistics); None when the table would be slow
    to ask (every gram of the term is common)."""
    pattern = f"%{connection.ops.prep_for_like_query(term)}%"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT principal_id, key, name, estimate FROM {TABLE}_search("
            "%s, %s, %s, %s, %s::text[], %s, %s, %s)",
            [term, pattern, scoped, tenant, types or None, after, ascending, count],
        )
        found = cursor.fetchall()
    if found and found[0][0] is None:
        return None
    return [row[:3] for row in found], found[0][3] if found else None
