"""Seed a big tenant and a small one, then time the principal lists, search, detail, the
Django admin and HTTP Basic logins.

    .venv/bin/python bench/principals.py [--count 100000] [--small 1000] [--requests 20]
                                         [--keep] [--fresh] [--only WORD]

Uses DATABASE_URL when set, else a throwaway SQLite file under var/bench/ (removed at the
end). Seeds `--count` principals into tenant `bench-big` and `--small` into `bench-small`
(PostgreSQL: COPY, with the GIN and RUM indexes built once after the load; SQLite: batched
INSERTs), runs VACUUM ANALYZE (PostgreSQL) or ANALYZE, then times each operation with the
Django test client, in process (no network, no server): one warm-up request, then the
median of `--requests` requests (3 when the warm-up took over 5 s, 1 when it took over
30 s, none when it was stopped after 120 s: a slow page must not hold the machine). The
query count is that of the warm-up request. HTTP Basic rows time a client repeating its
credentials: the warm-up verifies the password hash (its time is in the note), the
requests after it find the login remembered (MAILADMIN_BASIC_AUTH_CACHE_SECONDS).

With `--keep` the seeded tenants stay, and a later run with the same counts reuses them
(seeding 1,000,000 takes minutes; `--fresh` seeds again); without it they are deleted at
the end. Use a database of your own: the bench adds and removes rows, and VACUUM ANALYZE
runs over the whole database.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import signal
import statistics
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BIG, SMALL = "bench-big", "bench-small"
BASIC_PASSWORD = "bench basic password 1"  # noqa: S105 - a throwaway benchmark login
SLOW_MS = 5000
STOP_S = 120  # a warm-up request running longer is stopped and reported as such
GOAL_MS = 100
# Realistic-looking names: substring search behaves on them as on real directories.
FIRST = [
    "anna",
    "emma",
    "mia",
    "sofia",
    "hannah",
    "lena",
    "lea",
    "marie",
    "lina",
    "ella",
    "clara",
    "leonie",
    "amelie",
    "laura",
    "julia",
    "sarah",
    "lisa",
    "nina",
    "paula",
    "ida",
    "noah",
    "ben",
    "paul",
    "leon",
    "finn",
    "elias",
    "jonas",
    "luis",
    "felix",
    "lukas",
    "max",
    "henry",
    "emil",
    "theo",
    "anton",
    "jakob",
    "david",
    "oskar",
    "moritz",
    "tim",
    "jan",
    "niklas",
    "tom",
    "erik",
    "karl",
    "olaf",
    "sven",
    "lars",
    "ingrid",
    "astrid",
]
LAST = [
    "mueller",
    "schmidt",
    "schneider",
    "fischer",
    "weber",
    "meyer",
    "wagner",
    "becker",
    "schulz",
    "hoffmann",
    "koch",
    "richter",
    "klein",
    "wolf",
    "schroeder",
    "neumann",
    "schwarz",
    "zimmermann",
    "braun",
    "krueger",
    "hofmann",
    "hartmann",
    "lange",
    "schmitt",
    "werner",
    "krause",
    "meier",
    "lehmann",
    "schmid",
    "schulze",
    "maier",
    "koehler",
    "herrmann",
    "koenig",
    "walter",
    "mayer",
    "huber",
    "kaiser",
    "fuchs",
    "peters",
    "lang",
    "scholz",
    "moeller",
    "weiss",
    "jung",
    "hahn",
    "schubert",
    "vogel",
    "friedrich",
    "keller",
    "guenther",
    "frank",
    "berger",
    "winkler",
    "roth",
    "beck",
    "lorenz",
    "baumann",
    "franke",
    "albrecht",
    "schuster",
    "simon",
    "ludwig",
    "boehm",
    "winter",
    "kraus",
    "martin",
    "schumacher",
    "kraemer",
    "vogt",
    "stein",
    "jaeger",
    "otto",
    "sommer",
    "gross",
    "seidel",
    "heinrich",
    "brandt",
    "haas",
    "schreiber",
    "graf",
    "schulte",
    "dietrich",
    "ziegler",
    "kuhn",
    "kuehn",
    "pohl",
    "engel",
    "horn",
    "busch",
    "bergmann",
    "thomas",
    "voigt",
    "sauer",
    "arnold",
    "wolff",
    "pfeiffer",
]


def configure() -> Path | None:
    """Settings come from the environment: set ours before Django reads them."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailadmin.settings")
    os.environ.setdefault("MAILADMIN_DEBUG", "0")  # no query log: time what production runs
    hosts = os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1")
    os.environ["ALLOWED_HOSTS"] = f"{hosts},testserver"
    if os.environ.get("DATABASE_URL"):
        return None
    path = ROOT / "var" / "bench" / f"principals-{os.getpid()}.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    return path


# --- seeding -----------------------------------------------------------------------------


def person(i: int) -> tuple[str, str]:
    """(first, last) of the i-th account: every first name with every last name."""
    return FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]


def account_name(i: int, tag: str) -> str:
    first, last = person(i)
    return f"{first}.{last}.{tag}{i}"


@dataclass
class Tenant:
    tenant: object
    admin: object
    count: int
    tag: str  # in every name of the tenant: "" (big) or "s" (small)
    domain_suffix: str


class Writer:
    """Bulk rows into a table: COPY on PostgreSQL, batched INSERTs elsewhere."""

    def __init__(self, connection):
        self.connection = connection

    def write(self, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
        quoted = ", ".join(self.connection.ops.quote_name(c) for c in columns)
        with self.connection.cursor() as cursor:
            if self.connection.vendor == "postgresql":
                raw = cursor.cursor  # psycopg 3
                with raw.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                return
            marks = ", ".join(["%s"] * len(columns))
            sql = f"INSERT INTO {table} ({quoted}) VALUES ({marks})"  # noqa: S608
            batch: list[Sequence] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= 5000:
                    cursor.executemany(sql, batch)
                    batch.clear()
            if batch:
                cursor.executemany(sql, batch)


def principal_rows(
    connection, tenant_id: int, specs: Iterator[tuple[str, str, str]], count: int
) -> tuple[list[str], Iterator[list]]:
    """Columns and rows of accounts_principal, each row the model's own defaults with the
    name, type and description of one spec (so new model fields get their defaults)."""
    from django.utils import timezone

    from apps.accounts.models import Principal

    fields = [f for f in Principal._meta.concrete_fields if not f.primary_key]
    template = Principal(type="individual", name="x", tenant_id=tenant_id, password="!")
    base = [f.get_db_prep_save(f.pre_save(template, True), connection) for f in fields]
    at = {f.attname: n for n, f in enumerate(fields)}
    created = fields[at["created_at"]]
    start = timezone.now() - timedelta(seconds=count)

    def rows() -> Iterator[list]:
        for n, (type_, name, description) in enumerate(specs):
            row = list(base)
            row[at["type"]], row[at["name"]], row[at["description"]] = type_, name, description
            row[at["created_at"]] = created.get_db_prep_save(
                start + timedelta(seconds=n), connection
            )
            yield row

    return [f.column for f in fields], rows()


def seed_tenant(name: str, count: int, tag: str) -> Tenant:
    """`count` principals in a new tenant: 1% domains, 2% groups, 1% lists, the rest
    accounts with an address, the role `user`, one group and one list each."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    from apps.accounts.models import Principal, PrincipalEmail, PrincipalType
    from apps.accounts.principals.services import builtin_role, tenant_ensure

    T = PrincipalType
    writer = Writer(connection)
    suffix = f"{name}.example"
    with transaction.atomic(), gin_indexes_rebuilt_after(connection):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                skip_foreign_key_checks(cursor)  # the rows are generated consistent
        tenant = tenant_ensure(name=name, description=f"Benchmark tenant: {count} principals")
        admin = Principal.objects.create(
            name=f"{name}-admin",
            type=T.INDIVIDUAL,
            tenant=tenant,
            password=make_password(BASIC_PASSWORD),
        )
        admin.roles.add(builtin_role("tenant-admin"))
        n_domains, n_groups, n_lists = (
            max(1, count // 100),
            max(1, count // 50),
            max(1, count // 100),
        )
        n_accounts = count - 1 - n_domains - n_groups - n_lists

        def specs() -> Iterator[tuple[str, str, str]]:
            for i in range(n_domains):
                yield T.DOMAIN, f"d{i}.{suffix}", f"Domain {i}"
            for i in range(n_groups):
                yield T.GROUP, f"team-{tag}{i}", f"Team {i}"
            for i in range(n_lists):
                yield T.LIST, f"list-{tag}{i}", f"Mailing list {i}"
            for i in range(n_accounts):
                first, last = person(i)
                yield T.INDIVIDUAL, account_name(i, tag), f"{first.title()} {last.title()}"

        columns, rows = principal_rows(connection, tenant.pk, specs(), count)
        writer.write(Principal._meta.db_table, columns, rows)

        def ids(type_: str) -> list[int]:
            queryset = Principal.objects.filter(tenant=tenant, type=type_).exclude(pk=admin.pk)
            return list(queryset.order_by("pk").values_list("pk", flat=True))

        domains = [f"d{i}.{suffix}" for i in range(n_domains)]
        accounts, groups, lists = ids(T.INDIVIDUAL), ids(T.GROUP), ids(T.LIST)
        writer.write(
            PrincipalEmail._meta.db_table,
            ["principal_id", "address", "position"],
            (
                (pk, f"{account_name(i, tag)}@{domains[i % len(domains)]}", 0)
                for i, pk in enumerate(accounts)
            ),
        )
        user = builtin_role("user").pk
        writer.write(
            Principal.roles.through._meta.db_table,
            ["from_principal_id", "to_principal_id"],
            ((pk, user) for pk in accounts),
        )
        writer.write(
            Principal.member_of.through._meta.db_table,
            ["from_principal_id", "to_principal_id"],
            (
                (pk, target[i % len(target)])
                for i, pk in enumerate(accounts)
                for target in (groups, lists)
            ),
        )
    return Tenant(tenant, admin, count, tag, suffix)


@contextmanager
def gin_indexes_rebuilt_after(connection) -> Iterator[None]:
    """On PostgreSQL, drop the principal tables' GIN (trigram) indexes and the RUM index
    of the search table (apps.accounts.principals.search_rum, whose triggers fill it
    during the load) for the bulk load and build them again after it, in the same
    transaction: building an index once is many times faster than updating it row by row,
    and a failure rolls the drop back."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
            "('accounts_principal', 'accounts_principalemail', 'accounts_principal_rum') "
            "AND (indexdef LIKE '%% USING gin %%' OR indexdef LIKE '%% USING rum %%')"
        )
        indexes = cursor.fetchall()
        for index, _ in indexes:
            cursor.execute(f'DROP INDEX "{index}"')
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no index build with checks pending
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            cursor.execute(definition)


def existing_tenant(name: str, count: int, tag: str) -> Tenant | None:
    from apps.accounts.models import Principal

    tenant = Principal.objects.filter(name=name, type="tenant").first()
    if tenant is None:
        return None
    if tenant.description != f"Benchmark tenant: {count} principals":
        drop_tenants([tenant.pk])
        return None
    admin = Principal.objects.get(name=f"{name}-admin")
    return Tenant(tenant, admin, count, tag, f"{name}.example")


def drop_tenants(tenant_ids: list[int]) -> None:
    """Delete benchmark tenants with raw DELETEs: the ORM's cascade would load a million
    rows into memory first."""
    from django.db import connection, transaction

    from apps.accounts.models import Principal

    if not tenant_ids:
        return
    # Table and column names come from the models; the ids are parameters.
    marks = ", ".join(["%s"] * len(tenant_ids))
    members = f"SELECT id FROM accounts_principal WHERE tenant_id IN ({marks}) OR id IN ({marks})"  # noqa: S608, E501
    # Every other table pointing at a principal: memberships, addresses, audit rows...
    referencing = [
        (rel.related_model._meta.db_table, rel.field.column)
        for rel in Principal._meta.get_fields(include_hidden=True)
        if rel.auto_created
        and not rel.concrete
        and (rel.one_to_many or rel.one_to_one)
        and rel.related_model is not Principal
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            skip_foreign_key_checks(cursor)
            search_table_left_out(cursor, members, [*tenant_ids, *tenant_ids])
        for table, column in referencing:
            sql = f"DELETE FROM {table} WHERE {column} IN ({members})"  # noqa: S608
            cursor.execute(sql, [*tenant_ids, *tenant_ids])
        orphan = (
            f"UPDATE accounts_principal SET created_by_id = NULL WHERE created_by_id IN ({members})"  # noqa: S608, E501
        )
        cursor.execute(orphan, [*tenant_ids, *tenant_ids])
        for column in ("tenant_id", "id"):
            sql = f"DELETE FROM accounts_principal WHERE {column} IN ({marks})"  # noqa: S608
            cursor.execute(sql, tenant_ids)
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no ALTER TABLE with checks pending
            search_table_triggers(cursor, enable=True)


def search_table_left_out(cursor, members: str, params: list[int]) -> None:
    """The RUM search table's rows of the principals about to go, deleted at once, and
    its triggers off until the end of the transaction: deleting the addresses first would
    have them refill the rows of a million principals (and their index) only to delete
    them after."""
    from apps.accounts.principals import search_rum

    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [search_rum.TABLE])
    if not cursor.fetchone()[0]:
        return
    search_table_triggers(cursor, enable=False)
    cursor.execute(f"DELETE FROM {search_rum.TABLE} WHERE principal_id IN ({members})", params)  # noqa: S608


def search_table_triggers(cursor, *, enable: bool) -> None:
    from apps.accounts.principals import search_rum

    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [search_rum.TABLE])
    if not cursor.fetchone()[0]:
        return
    for name, table, *_ in search_rum.TRIGGERS:
        how = "ENABLE ALWAYS" if enable else "DISABLE"
        cursor.execute(f"ALTER TABLE {table} {how} TRIGGER {search_rum.TABLE}_{name}")


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {memory:.0f} GiB, load average before: {os.getloadavg()[0]:.1f}"
    )


def database() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0].split()[0]
            cursor.execute("SHOW shared_buffers")
            return f"PostgreSQL {version} (shared_buffers {cursor.fetchone()[0]})"
        cursor.execute("SELECT sqlite_version()")
        return f"SQLite {cursor.fetchone()[0]}"


def skip_foreign_key_checks(cursor) -> None:
    """PostgreSQL's per-row foreign key checks take minutes for a million principals and
    prove nothing for rows the bench generates (or deletes with everything pointing at
    them); only a superuser may skip them, for the current transaction."""
    from django.db import DatabaseError, transaction

    try:
        with transaction.atomic():
            cursor.execute("SET LOCAL session_replication_role = replica")
    except DatabaseError:
        pass  # not a superuser: the checks run, slowly


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE")  # fresh statistics and visibility map
        else:
            cursor.execute("ANALYZE")


# --- the extra logins --------------------------------------------------------------------


def extra_logins(big: Tenant) -> dict[str, object]:
    """A superadmin (the Django admin) and two tenant admins for HTTP Basic: one with no app
    password, one with 20 (logging in with the newest, the worst case of a linear check)."""
    from django.contrib.auth.hashers import make_password

    from apps.accounts.auth.app_passwords import app_password_add
    from apps.accounts.models import Principal
    from apps.accounts.principals.services import builtin_role

    logins: dict[str, object] = {}
    superadmin, _ = Principal.objects.get_or_create(
        name="bench-superadmin",
        defaults={"type": "individual", "is_superuser": True, "password": "!"},
    )
    logins["superadmin"] = superadmin
    for name, n in (("bench-basic0", 0), ("bench-basic20", 20)):
        user = Principal.objects.filter(name=name).first()
        if user is None:
            user = Principal.objects.create(
                name=name,
                type="individual",
                tenant=big.tenant,
                password=make_password(BASIC_PASSWORD),
            )
            user.roles.add(builtin_role("tenant-admin"))
        user.app_passwords.all().delete()
        secret = BASIC_PASSWORD
        for i in range(n):
            _, secret = app_password_add(actor=user, name=f"client {i}")
        logins[name] = (user, secret)
    return logins


# --- timing ------------------------------------------------------------------------------


@dataclass
class Result:
    label: str
    median_ms: float
    queries: int
    requests: int
    note: str = ""
    goal_ms: int = GOAL_MS


class Stopped(Exception):
    """A request ran past STOP_S."""


@contextmanager
def stop_after(seconds: int) -> Iterator[None]:
    """Interrupt a request that runs longer than `seconds` (the in-process client cannot
    time out on its own), so one pathological page cannot hold the machine."""

    def stop(signum, frame):
        raise Stopped

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(
    label: str, client, urls: list[str], *, goal: int = GOAL_MS, warmup_note: str = "", **headers
) -> Result:
    """Median wall time of GETs of `urls` (cycled), after one warm-up whose queries count.

    `warmup_note`: the warm-up differs from the steady state by design (HTTP Basic: its
    password hash, then the login is remembered); its time is reported with this note."""
    from django.db import connection

    requests = int(os.environ.get("BENCH_REQUESTS", "20"))
    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    start = time.perf_counter()
    try:
        with stop_after(STOP_S), connection.execute_wrapper(count):
            response = client.get(urls[0], **headers)
    except Stopped:
        return Result(label, STOP_S * 1000, queries, 0, f"stopped after {STOP_S} s", goal)
    warmup = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{label}: {urls[0]} answered {response.status_code}")
    note = f"warm-up {warmup:,.0f} ms ({warmup_note})" if warmup_note else ""
    if warmup > SLOW_MS:
        requests = 1 if warmup > 6 * SLOW_MS else 3
        size = len(response.content)
        note = f"warm-up {warmup / 1000:.1f} s" + (f", {size / 1e6:.1f} MB" if size > 1e6 else "")
    timings = []
    for n in range(requests):
        url = urls[n % len(urls)]
        start = time.perf_counter()
        response = client.get(url, **headers)
        timings.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{label}: {url} answered {response.status_code}")
    return Result(label, statistics.median(timings), queries, requests, note, goal)


def api_total(client, url: str, **headers) -> str:
    data = client.get(url, **headers).json()["data"]
    estimated = " (estimate)" if data.get("totalEstimated") else ""
    return f"total {data['total']:,}{estimated}"


def operations(big: Tenant, small: Tenant, logins: dict[str, object], only: str) -> list[Result]:
    from django.conf import settings
    from django.test import Client

    from apps.accounts.auth.tokens import token_issue
    from apps.accounts.models import AccessToken, Principal, PrincipalEmail

    results: list[Result] = []

    def bearer(tenant: Tenant) -> tuple[Client, dict[str, str]]:
        _, token = token_issue(principal=tenant.admin, kind=AccessToken.Kind.OAUTH, name="bench")
        client = Client()
        client.get("/api/", HTTP_AUTHORIZATION=f"Bearer {token}")  # first use is recorded
        return client, {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def add(
        label: str,
        client,
        urls: list[str],
        *,
        goal: int = GOAL_MS,
        warmup_note: str = "",
        **headers,
    ) -> None:
        if only and only not in label:
            return
        result = run(label, client, urls, goal=goal, warmup_note=warmup_note, **headers)
        if urls[0].startswith("/api/principal?") and result.requests:
            extra = api_total(client, urls[0], **headers)
            result.note = f"{extra}; {result.note}" if result.note else extra
        results.append(result)
        print(f"  {result.label:<44} {result.median_ms:9.1f} ms", flush=True)

    api, auth = bearer(big)
    small_api, small_auth = bearer(small)
    n_accounts = big.count * 96 // 100
    spread = [1 + (i * 37) % 150 for i in range(20)]  # pages 1..150 of 50 (offset < 10,000)
    base = "/api/principal?types=individual&limit=50"
    add("API list, pages 1-150", api, [f"{base}&page={n}" for n in spread], **auth)
    add("API list, deepest page (page 200)", api, [f"{base}&page=200"], **auth)
    middle = account_name(n_accounts // 2, big.tag)
    cursor = _cursor("name", [middle])
    add("API list, middle by cursor", api, [f"{base}&cursor={cursor}"], **auth)
    add("API list, last page (cursor=last)", api, [f"{base}&cursor=last"], **auth)
    add(
        "API list, all types, by created, last",
        api,
        ["/api/principal?order=-created&limit=50&cursor=last"],
        **auth,
    )
    exact = account_name(n_accounts // 3, big.tag)
    address = PrincipalEmail.objects.get(principal__name=exact).address
    first, last = person(7)
    searches = [
        ("exact name", exact),
        ("broad: every address", big.domain_suffix),
        ("no match", "no-such-person"),
        ("by e-mail", address),
        ("common, clustered: a first name", first),
        ("common, clustered: part of a last name", last[1:5]),
    ]
    for what, term in searches:
        add(f"API search, {what}", api, [f"/api/principal?filter={term}&limit=50"], **auth)
    small_exact = account_name(small.count // 3, small.tag)
    for what, term in (
        ("exact name", small_exact),
        ("a first name", first),
        ("no match", "no-such-person"),
        ("big tenant's address", address),
    ):
        add(
            f"API search (1k tenant), {what}",
            small_api,
            [f"/api/principal?filter={term}&limit=50"],
            **small_auth,
        )
    ids = list(
        Principal.objects.filter(tenant=big.tenant, type="individual")
        .order_by("pk")
        .values_list("pk", flat=True)[: n_accounts : max(1, n_accounts // 20)]
    )
    add("API detail", api, [f"/api/principal/{pk}" for pk in ids], **auth)

    console = Client()
    console.force_login(big.admin)
    # A stopped request is reported in the table, not as a logged server error.
    logging.getLogger("django.request").setLevel(logging.CRITICAL)
    add("console list page", console, [f"/accounts/?type=individual&page={n}" for n in spread])
    add("console list, last page", console, ["/accounts/?type=individual&cursor=last"])
    add("console search, exact name", console, [f"/accounts/?type=individual&q={exact}"])
    add("console search, a first name", console, [f"/accounts/?type=individual&q={first}"])

    admin = Client()
    admin.force_login(logins["superadmin"])
    add("admin changelist", admin, ["/admin/accounts/principal/"])
    add("admin search, exact name", admin, [f"/admin/accounts/principal/?q={exact}"])
    add("admin change form", admin, [f"/admin/accounts/principal/{ids[3]}/change/"], goal=200)

    # A mail client repeats its credentials: the first request verifies the password hash
    # (the warm-up, reported in the note), the next ones find the login remembered.
    remembered = settings.MAILADMIN_BASIC_AUTH_CACHE_SECONDS > 0
    for name, label in (("bench-basic0", "0"), ("bench-basic20", "20")):
        user, secret = logins[name]
        basic = base64.b64encode(f"{user.name}:{secret}".encode()).decode()
        add(
            f"Basic auth, {label} app passwords",
            Client(),
            [f"/api/principal/{user.pk}"],
            warmup_note="password hash; then remembered" if remembered else "login cache off",
            HTTP_AUTHORIZATION=f"Basic {basic}",
        )
    return results


def _cursor(order: str, values: list) -> str:
    """The cursor a client would hold after paging to the row with these key values."""
    from mailadmin.api.pagination import _encode, _Key

    return _encode(_Key(tuple(order.split(",")), False), "after", values)


def report(results: list[Result], header: str) -> None:
    print()
    print(header)
    print()
    print("| operation | median ms | queries | requests | goal | note |")
    print("|---|---:|---:|---:|---|---|")
    for r in results:
        verdict = "ok" if r.median_ms < r.goal_ms else f"**missed** (< {r.goal_ms} ms)"
        print(
            f"| {r.label} | {'> ' if not r.requests else ''}{r.median_ms:,.1f} | {r.queries} "
            f"| {r.requests} | {verdict} "
            f"| {r.note} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="principals, big tenant")
    parser.add_argument("--small", type=int, default=1_000, help="principals, small tenant")
    parser.add_argument("--requests", type=int, default=20, help="requests per measurement")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the tenants")
    parser.add_argument("--fresh", action="store_true", help="seed again even when kept")
    parser.add_argument("--only", default="", help="time only operations whose label has it")
    args = parser.parse_args()
    os.environ["BENCH_REQUESTS"] = str(args.requests)

    sqlite_path = configure()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from apps.accounts.models import Principal

    tenants: list[Tenant] = []
    try:
        call_command("migrate", verbosity=0)
        call_command("createcachetable", verbosity=0)  # the database cache, without Redis
        started, reused = time.perf_counter(), True
        for name, count, tag in ((BIG, args.count, ""), (SMALL, args.small, "s")):
            tenant = existing_tenant(name, count, tag) if args.keep and not args.fresh else None
            if tenant is None:
                stale = Principal.objects.filter(name=name, type="tenant")
                drop_tenants(list(stale.values_list("pk", flat=True)))
                tenant, reused = seed_tenant(name, count, tag), False
            tenants.append(tenant)
        seeded = time.perf_counter() - started
        logins = extra_logins(tenants[0])
        started = time.perf_counter()
        analyze()
        analyzed = time.perf_counter() - started
        seeding = "reused from an earlier run" if reused else f"seeded in {seeded:.0f} s"
        header = (
            f"{database()}: {args.count:,} + {args.small:,} principals, {seeding}, "
            f"{'VACUUM ' if connection.vendor == 'postgresql' else ''}ANALYZE {analyzed:.0f} s; "
            f"{machine()}; median of {args.requests} requests"
        )
        print(header, flush=True)
        results = operations(tenants[0], tenants[1], logins, args.only)
        report(results, f"{header}; load average after: {os.getloadavg()[0]:.1f}")
    finally:
        if sqlite_path is not None:
            connection.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)
        elif not args.keep:
            extra = Principal.objects.filter(
                name__in=["bench-superadmin", "bench-basic0", "bench-basic20"]
            )
            drop_tenants([t.tenant.pk for t in tenants] + list(extra.values_list("pk", flat=True)))


if __name__ == "__main__":
    main()
