"""PostgreSQL answers principal search and deep pages from the indexes migration 0003
made: the pg_trgm GIN indexes for substring search, the ordering indexes for pages."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from apps.accounts.models import Principal, PrincipalEmail
from apps.accounts.principals import selectors

# Transactional: VACUUM (which fills the statistics the planner costs GIN scans and
# index-only scans with) cannot run inside a transaction.
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
COUNT = 5_000


@pytest.fixture
def crowd(tenant_a, tenant_b, admin_a):
    """5,000 accounts with an address each in tenant A and as many in tenant B, vacuumed
    and analysed as autovacuum would leave them."""
    Principal.objects.bulk_create(
        Principal(
            name=f"{prefix}{i:05}",
            description=f"Person number {i}",
            type="individual",
            tenant=tenant,
            password="!",
        )
        for i in range(COUNT)
        for tenant, prefix in ((tenant_a, "person"), (tenant_b, "other"))
    )
    PrincipalEmail.objects.bulk_create(
        PrincipalEmail(principal=p, address=f"{p.name}@a.example")
        for p in Principal.objects.filter(name__regex=r"^(person|other)\d")
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE accounts_principal")
        cursor.execute("VACUUM ANALYZE accounts_principalemail")
    return tenant_a


def plan(queryset, *, walks: bool = True) -> str:
    """The plan PostgreSQL picks when reading a whole table (or, with `walks` off,
    walking a B-tree in order) is not an option: a table this small would be scanned."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        if not walks:
            cursor.execute("SET LOCAL enable_indexscan = off")
        return queryset.explain()


def arms(actor, term: str) -> list:
    """The querysets the pager asks first, each meant for one index."""
    listing = selectors.principal_list(actor=actor, types=["individual"], search=term)
    return [arm.order_by().values("pk") for arm in listing.arms()]


def test_name_and_description_search_use_their_trigram_indexes(crowd, admin_a):
    own, _ = arms(admin_a, "son0123")
    text = plan(own, walks=False)
    assert "accounts_principal_name_trgm" in text
    assert "accounts_principal_description_trgm" in text


def test_address_search_uses_the_address_trigram_index(crowd, admin_a):
    _, by_address = arms(admin_a, "son0123@a")
    assert "accounts_principalemail_local_trgm" in plan(by_address, walks=False)
    _, by_address = arms(admin_a, "rson01234")
    assert "accounts_principalemail_address_trgm" in plan(by_address, walks=False)


def test_many_matches_are_sorted_from_one_bitmap_of_the_indexes(crowd, admin_a):
    """The pager's sort (a common term away from the page's start) reads each matching
    principal once: the name and description trigram indexes and the primary keys of the
    matching addresses' owners in one bitmap, joined to nothing, so no estimate can turn it
    into a hash join over the whole list (the plan of the selective arms is above)."""
    listing = selectors.principal_list(actor=admin_a, types=["individual"], search="son01")
    sortable = listing.sortable(200_000)
    text = plan(sortable.order_by().values("pk", "name"), walks=False)
    assert "BitmapOr" in text
    assert "accounts_principal_name_trgm" in text
    assert "accounts_principal_description_trgm" in text
    assert "accounts_principal_pkey" in text
    assert "Join" not in text
    assert sorted(sortable.values_list("name", flat=True)) == [
        f"person{i:05}" for i in range(1000, 2000)
    ]
    assert listing.sortable(999) is None  # more addresses match than it may sort


def test_the_address_match_is_joined_to_the_actors_tenant(crowd, admin_a, admin_b):
    _, by_address = arms(admin_b, "person00001@a.example")
    sql = str(by_address.query)
    assert f'"accounts_principal"."tenant_id" = {admin_b.tenant_id}' in sql
    assert list(by_address) == []


def test_a_deep_page_skips_its_rows_in_the_ordering_index(crowd, admin_a):
    listing = selectors.principal_list(actor=admin_a, types=["individual"])
    text = plan(listing.values("pk")[4000:4051])  # what pagination's deep page runs first
    assert "principal_tenant_type_name" in text
    assert "Index Only Scan" in text


def test_the_case_insensitive_name_check_uses_its_index(crowd):
    text = plan(Principal.objects.filter(name__iexact="PERSON00042"))
    assert "principal_name_upper" in text


def test_a_search_by_name_reads_the_rum_index_in_key_order(crowd, admin_a):
    """Step 0 of the pager (PostgreSQL with the rum extension): the function's query is an
    ordered scan of the RUM index, never a bitmap scan and a sort of every match. The plan
    is the one the function ran, as auto_explain reports it."""
    from apps.accounts.principals import search_rum
    from mailadmin.api.pagination import paginate
    from tests.conftest import skip_or_fail

    search_rum.forget()
    if not search_rum.usable(connection):
        skip_or_fail("PostgreSQL here has no rum extension (package postgresql-NN-rum)")
    notices: list[str] = []
    raw = connection.connection  # psycopg 3
    raw.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary or ""))
    listing = selectors.principal_list(actor=admin_a, types=["individual"], search="son01")
    with connection.cursor() as cursor:
        cursor.execute("LOAD 'auto_explain'")
        cursor.execute("SET auto_explain.log_min_duration = 0")
        cursor.execute("SET auto_explain.log_nested_statements = on")
        cursor.execute("SET auto_explain.log_level = notice")
        try:
            page = paginate(listing, page=1, limit=50)
        finally:
            cursor.execute("RESET auto_explain.log_min_duration")
    assert [p.name for p in page.items] == [f"person{i:05}" for i in range(1000, 1050)]
    (text,) = [n for n in notices if f"FROM {search_rum.TABLE} r" in n]
    assert f"Index Scan using {search_rum.INDEX} on {search_rum.TABLE}" in text
    assert "Order By: (key |=> '0'::bigint)" in text
    assert "Bitmap" not in text and "Sort" not in text
