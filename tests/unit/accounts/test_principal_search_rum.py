"""PostgreSQL's RUM search table (apps.accounts.principals.search_rum): the triggers keep
it exact whatever writes, the key follows the name order, the pager's step 0 answers what
a plain scan answers (or gives up), and search works the same without it."""

# ruff: noqa: S608 - the SQL names the module's own table; values are parameters

from __future__ import annotations

import random

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Principal, PrincipalEmail
from apps.accounts.principals import search_rum, selectors, services
from mailadmin.api import pagination
from mailadmin.api.pagination import paginate
from tests.conftest import skip_or_fail

pytestmark = pytest.mark.django_db
TABLE = search_rum.TABLE


@pytest.fixture(autouse=True)
def _rum():
    if connection.vendor != "postgresql":
        pytest.skip("the RUM table is PostgreSQL's")
    search_rum.forget()
    if not search_rum.usable(connection):
        skip_or_fail("PostgreSQL here has no rum extension (package postgresql-NN-rum)")
    yield
    search_rum.forget()  # a test that dropped the table rolled that back


@pytest.fixture
def used(monkeypatch) -> list[str]:
    """The names of the pager's fetches that answered a page."""
    answered: list[str] = []
    for name in ("_index_ordered", "_windowed", "_sorted_union", "_slice"):
        real = getattr(pagination, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            result = _real(*args, **kwargs)
            answered.append(_name)
            return result

        monkeypatch.setattr(pagination, name, spy)
    return answered


def rows() -> dict[int, tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT principal_id, tenant_id, type, name, key, hay, grams FROM {TABLE}")
        return {row[0]: row[1:] for row in cursor.fetchall()}


def assert_exact() -> None:
    """The table holds a row for every principal and no other, each what the tables say
    now: refilling it from scratch changes nothing."""
    kept = rows()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}")
        cursor.execute(f"SELECT {TABLE}_refresh(ARRAY(SELECT id FROM accounts_principal))")
    assert kept == rows()
    assert set(kept) == set(Principal.objects.values_list("pk", flat=True))


def hay(name: str) -> str:
    return rows()[Principal.objects.get(name=name).pk][4]


def plain(actor, term: str, types=("individual",)) -> list[str]:
    queryset = selectors.principal_scope(actor)
    if types:
        queryset = queryset.filter(type__in=types)
    match = Q(name__icontains=term) | Q(description__icontains=term)
    match |= Q(emails__address__icontains=term)
    return list(queryset.filter(match).distinct().order_by("name").values_list("name", flat=True))


def searched(actor, term: str, *, limit: int = 10, types=("individual",), **filters) -> list[str]:
    listing = selectors.principal_list(actor=actor, types=list(types), search=term, **filters)
    page = paginate(listing, page=1, limit=limit)
    seen = [p.name for p in page.items]
    while page.next_cursor:
        page = paginate(listing, limit=limit, cursor=page.next_cursor)
        seen += [p.name for p in page.items]
    return seen


def test_the_triggers_keep_the_table_exact_whatever_writes(world_a, world_b, admin_a):
    account = world_a.account
    assert hay(account.name) == "\x01".join(
        [account.name.upper(), account.description.upper()]
        + [e.address.upper() for e in account.emails.order_by("position")]
    )
    services.principal_update(
        actor=admin_a,
        principal=account,
        operations=[
            {"action": "set", "field": "name", "value": "renamed-a"},
            {"action": "set", "field": "description", "value": "Now Described"},
            {"action": "set", "field": "emails", "value": ["first@a.example", "second@a.example"]},
        ],
    )
    assert hay("renamed-a") == ("RENAMED-A\x01NOW DESCRIBED\x01FIRST@A.EXAMPLE\x01SECOND@A.EXAMPLE")
    assert_exact()
    PrincipalEmail.objects.filter(address="first@a.example").delete()
    assert hay("renamed-a") == "RENAMED-A\x01NOW DESCRIBED\x01SECOND@A.EXAMPLE"
    # An address handed to another principal, in one UPDATE: both rows change.
    PrincipalEmail.objects.filter(address="second@a.example").update(principal=world_a.group)
    assert hay("renamed-a") == "RENAMED-A\x01NOW DESCRIBED"
    assert "SECOND@A.EXAMPLE" in hay(world_a.group.name)
    Principal.objects.bulk_create(
        Principal(name=f"bulk-{i}", type="individual", tenant=world_a.tenant) for i in range(3)
    )
    Principal.objects.filter(name="renamed-a").update(tenant=world_b.tenant)  # a tenant move
    assert rows()[account.pk][0] == world_b.tenant.pk
    Principal.objects.filter(pk=account.pk).update(last_login=None)  # nothing searched
    assert_exact()
    Principal.objects.filter(name__startswith="bulk-").delete()
    services.principal_delete(actor=admin_a, principal=world_a.group)
    assert world_a.group.pk not in rows()
    assert_exact()
    # Bulk loads skip foreign key checks in replica mode, which skips ordinary triggers.
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            loaded = Principal.objects.create(name="loaded", type="individual")
            PrincipalEmail.objects.create(principal=loaded, address="loaded@a.example")
            Principal.objects.filter(name="renamed-a").delete()
        finally:
            cursor.execute("SET session_replication_role = origin")
    assert hay("loaded") == "LOADED\x01\x01LOADED@A.EXAMPLE"
    assert_exact()


def test_the_key_never_decreases_as_the_name_grows():
    rng = random.Random(8)
    alphabet = "abcdxyz.-_@0189AZ!~é€\U0001f600"
    names = {"", "a", "a-", "a!", "aB", "ab", "z" * 12, "marie.wagner.44578"}
    names |= {"".join(rng.choices(alphabet, k=rng.randint(1, 14))) for _ in range(2000)}
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT n, {TABLE}_key(n) FROM unnest(%s::text[]) n ORDER BY n COLLATE "C"',
            [sorted(names)],
        )
        ordered = cursor.fetchall()
    assert [name for name, _ in ordered] == sorted(names)  # byte order is code point order
    keys = [key for _, key in ordered]
    assert keys == sorted(keys)
    assert max(keys) < 2**53  # exact as the float8 RUM orders by
    # Names of up to 8 characters of the key's alphabet each have a key of their own.
    short = {"".join(rng.choices(search_rum.ALPHABET, k=rng.randint(1, 8))) for _ in range(2000)}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(DISTINCT {TABLE}_key(n)) FROM unnest(%s::text[]) n", [list(short)]
        )
        assert cursor.fetchone()[0] == len(short)


@pytest.fixture
def tied(world_a):
    """30 accounts whose names agree on their first 9 characters (one key), between
    others that do not."""
    Principal.objects.bulk_create(
        [
            *(
                Principal(name=f"tiedname-{i:02}", type="individual", tenant=world_a.tenant)
                for i in range(30)
            ),
            *(
                Principal(name=f"{first}-tiedname", type="individual", tenant=world_a.tenant)
                for first in ("a", "tie", "zz")
            ),
        ]
    )
    return world_a


def test_ties_beyond_the_budget_leave_the_page_to_the_other_plans(tied, admin_a, used, monkeypatch):
    expected = plain(admin_a, "tiedname")
    assert len(expected) == 33
    assert searched(admin_a, "tiedname") == expected
    assert set(used) == {"_index_ordered"}
    used.clear()
    monkeypatch.setattr(pagination, "TIE_BUDGET", 5)  # reads 16 rows: all tied at the end
    assert searched(admin_a, "tiedname") == expected
    assert "_index_ordered" not in used[:1]  # page 1 gives up: a tie run fills the read
    assert searched(admin_a, "iedname-1") == plain(admin_a, "iedname-1")  # 10 ties, 11 read


def test_a_tenant_admin_never_gets_another_tenants_principals(
    world_a, world_b, admin_a, admin_b, superadmin, used
):
    Principal.objects.bulk_create(
        Principal(name=f"shared{t}-{i}", type="individual", tenant=world.tenant)
        for t, world in (("a", world_a), ("b", world_b))
        for i in range(12)
    )
    assert searched(admin_a, "shared") == [f"shareda-{i}" for i in sorted(range(12), key=str)]
    assert searched(admin_b, "shared") == [f"sharedb-{i}" for i in sorted(range(12), key=str)]
    assert searched(admin_b, "shareda") == []
    everyone = plain(superadmin, "shared")
    assert len(everyone) == 24 and searched(superadmin, "shared") == everyone
    assert searched(superadmin, "shared", tenant_id=world_b.tenant.pk) == plain(admin_b, "shared")
    assert searched(admin_a, "shared", tenant_id=world_b.tenant.pk) == []
    assert searched(superadmin, "tenant-", types=()) == plain(superadmin, "tenant-", types=())
    assert set(used) == {"_index_ordered", "_slice"}  # _slice: the empty list, at once


def test_a_search_costs_the_same_queries_through_the_table(
    tied, api_a, client, admin_a, used, django_assert_max_num_queries
):
    api_a.get("/api/")  # the token's last-used update happens once, here
    # token + actor, roles of the actor, the table, the page's rows, 3 prefetches: all
    # matches were read, so no count.
    with django_assert_max_num_queries(7):
        data = api_a.get("/api/principal?filter=tiedname&limit=10").json()["data"]
    assert [i["name"] for i in data["items"]] == plain(admin_a, "tiedname")[:10]
    assert data["total"] == 33
    # A page by cursor has the total to find: the planner's estimate, and a capped count
    # when that is small (as on every plan).
    with django_assert_max_num_queries(9):
        following = api_a.get(f"/api/principal?filter=tiedname&limit=10&cursor={data['next']}")
    assert [i["name"] for i in following.json()["data"]["items"]] == plain(admin_a, "tiedname")[
        10:20
    ]
    client.force_login(admin_a)
    client.get("/accounts/?type=individual&q=warm-up")
    with django_assert_max_num_queries(8):  # session, actor, roles, table, page, prefetches
        response = client.get("/accounts/?type=individual&q=tiedname", HTTP_HX_REQUEST="true")
    assert "tiedname-00" in response.content.decode()
    assert set(used) == {"_index_ordered"}


def test_without_the_table_search_takes_the_trigram_path(world_a, admin_a, used):
    before = searched(admin_a, "jane")
    assert before == plain(admin_a, "jane") and before
    search_rum.teardown(connection)  # as on a server without the package (rolled back)
    assert not search_rum.usable(connection)
    with CaptureQueriesContext(connection) as queries:
        assert searched(admin_a, "jane") == before
    assert not any(TABLE in q["sql"] for q in queries.captured_queries)
    assert "_index_ordered" not in used[-1:]
    with connection.cursor() as cursor:  # no ALTER TABLE with foreign key checks pending
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert search_rum.setup(connection)  # what `manage.py principal_search_index` runs
    assert search_rum.usable(connection)
    assert_exact()
    assert search_rum.setup(connection)  # again: nothing changes
    assert_exact()
    used.clear()
    assert searched(admin_a, "jane") == before
    assert used == ["_index_ordered"]


def test_an_extension_that_is_not_available_sets_nothing_up():
    search_rum.teardown(connection)
    with connection.cursor() as cursor:
        assert search_rum.available(cursor)
        assert not search_rum.available(cursor, "rum_not_installed")
    assert not search_rum.setup(connection, extension="rum_not_installed")
    assert not search_rum.usable(connection)


def test_a_name_column_that_does_not_sort_by_byte_is_not_searched_through_the_table():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'")
        if cursor.fetchone() is None:
            pytest.skip("this PostgreSQL has no ICU collations")
        cursor.execute(
            'ALTER TABLE accounts_principal ALTER COLUMN name TYPE varchar(255) COLLATE "und-x-icu"'
        )
    search_rum.forget()
    assert not search_rum.usable(connection)
