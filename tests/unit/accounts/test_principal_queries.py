"""The list API and the list page cost a constant number of queries, whatever the size of
the tenant or the page (20,000 principals here)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Principal, PrincipalEmail
from apps.accounts.principals.services import builtin_role
from tests.support.planner import analyze

pytestmark = pytest.mark.django_db
COUNT = 20_000
# token + actor, roles of the actor, page, count, 3 prefetches (emails, roles, member_of).
API_QUERIES = 7
# session, actor, roles of the actor, page, count, 3 prefetches.
PAGE_QUERIES = 8
# A search, by the plan the pager picks (mailadmin.api.pagination.Search):
# few matches: the index probe instead of the count (the page holds them all); on SQLite
# a look at the FTS index first (it cannot stop early once cut to a tenant).
FTS_LOOK = int(connection.vendor == "sqlite")
SEARCH_FEW = API_QUERIES + FTS_LOOK
# a broad term: probe, window bound, page, the total: PostgreSQL's estimate (and a
# capped COUNT when the estimate is small), or the capped COUNT elsewhere.
SEARCH_BROAD = API_QUERIES - 1 + 4
# a common term away from the start: probe, window bound, window (too few), on
# PostgreSQL the owners of the matching addresses, the sort, the page's rows (the sort
# counted the matches).
OWNERS = int(connection.vendor == "postgresql")
SEARCH_CLUSTERED = API_QUERIES - 2 + 5 + OWNERS
# With PostgreSQL's RUM table (the rum extension), a search by name reads its page from
# the table in name order, in place of the count: the queries of a list page.
SEARCH_ORDERED = API_QUERIES


def rum() -> bool:
    from apps.accounts.principals import search_rum

    return search_rum.usable(connection)


@pytest.fixture
def crowded_tenant(world_a):
    """20,000 accounts in tenant A, each with two addresses, a role and two memberships."""
    tenant = world_a.tenant
    Principal.objects.bulk_create(
        [
            Principal(
                name=f"bulk{i:05}",
                type="individual",
                tenant=tenant,
                description=f"Bulk account {i}",
                password="!",
            )
            for i in range(COUNT)
        ],
        batch_size=2000,
    )
    ids = list(Principal.objects.filter(name__startswith="bulk").values_list("pk", flat=True))
    PrincipalEmail.objects.bulk_create(
        [
            PrincipalEmail(principal_id=pk, address=f"b{pk}{suffix}@a.example", position=pos)
            for pk in ids
            for pos, suffix in enumerate(("", ".alias"))
        ],
        batch_size=5000,
    )
    user = builtin_role("user")
    Roles = Principal.roles.through
    Roles.objects.bulk_create(
        [Roles(from_principal_id=pk, to_principal_id=user.pk) for pk in ids], batch_size=5000
    )
    Members = Principal.member_of.through
    Members.objects.bulk_create(
        [
            Members(from_principal_id=pk, to_principal_id=target.pk)
            for pk in ids
            for target in (world_a.group, world_a.mailing_list)
        ],
        batch_size=5000,
    )
    analyze(Principal, PrincipalEmail, Roles, Members)
    return world_a


def _count(request) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        response = request()
    return len(queries), response


def test_it_lists_20000_principals_and_their_groups_through_the_api_in_constant_queries(
    crowded_tenant, api_a, django_assert_max_num_queries
):
    api_a.get("/api/")  # the token's last-used update happens once, here
    with django_assert_max_num_queries(API_QUERIES):
        response = api_a.get("/api/principal?types=individual&limit=50")
    data = response.json()["data"]
    assert data["total"] == 10_000  # capped by max-total
    assert len(data["items"]) == 50
    assert data["items"][1]["emails"] == [
        f"b{data['items'][1]['id']}@a.example",
        f"b{data['items'][1]['id']}.alias@a.example",
    ]
    assert data["items"][1]["memberOf"] == ["staff-a"]
    small, _ = _count(lambda: api_a.get("/api/principal?limit=5"))
    deep, _ = _count(lambda: api_a.get("/api/principal?limit=50&page=200&order=-created"))
    by_cursor, _ = _count(lambda: api_a.get(f"/api/principal?limit=50&cursor={data['next']}"))
    last, _ = _count(lambda: api_a.get("/api/principal?limit=1000&cursor=last&order=type"))
    assert by_cursor == API_QUERIES
    assert deep == API_QUERIES + 1  # the page's ids first, then their rows
    # Members are read only for the groups, lists and roles on a page: one query a kind.
    assert small == API_QUERIES + 1  # all-a, a list, is among the first five
    assert last == API_QUERIES + 2  # groups, lists and roles: members and role holders
    groups, response = _count(lambda: api_a.get("/api/principal?types=group,list"))
    # one page holds every group (no COUNT); their members are one more query
    assert groups == API_QUERIES
    items = {i["name"]: i for i in response.json()["data"]["items"]}
    assert len(items["staff-a"]["members"]) == COUNT + 1


def test_it_searches_20000_principals_in_constant_queries_whatever_the_plan(
    crowded_tenant, api_a, django_assert_max_num_queries
):
    api_a.get("/api/principal?filter=warm-up")  # token use, and SQLite's FTS table lookup
    few, response = _count(lambda: api_a.get("/api/principal?filter=bulk12345"))
    assert [i["name"] for i in response.json()["data"]["items"]] == ["bulk12345"]
    broad, response = _count(lambda: api_a.get("/api/principal?filter=a.example&order=-created"))
    assert len(response.json()["data"]["items"]) == 50
    clustered, response = _count(lambda: api_a.get("/api/principal?filter=bulk1&limit=1000"))
    data = response.json()["data"]
    assert data["items"][0]["name"] == "bulk10000"
    nothing, _ = _count(lambda: api_a.get("/api/principal?filter=nothing-like-this"))
    assert SEARCH_BROAD - 1 <= broad <= SEARCH_BROAD
    assert nothing == 3 + FTS_LOOK  # token, actor, the probe: an empty page reads no more
    if rum():  # the total: the table's estimate of the 11,111 matches
        assert (few, clustered) == (SEARCH_FEW, SEARCH_ORDERED)
        assert data["totalEstimated"] and 2_001 < data["total"] <= COUNT
    else:
        assert (few, clustered) == (SEARCH_FEW, SEARCH_CLUSTERED)
        assert data["total"] == 10_000


def test_it_shows_the_list_page_of_20000_principals_in_constant_queries(
    crowded_tenant, client, admin_a, django_assert_max_num_queries
):
    client.force_login(admin_a)
    with django_assert_max_num_queries(PAGE_QUERIES):
        response = client.get("/accounts/?type=individual")
    assert response.status_code == 200
    assert "Page 1 of 200+ · 10,000+ in all" in response.content.decode()
    later, _ = _count(lambda: client.get("/accounts/?type=individual&page=150&sort=-created"))
    later -= 1  # a page past the first reads its ids first, then their rows
    last, response = _count(lambda: client.get("/accounts/?type=individual&cursor=last"))
    assert "bulk19999" in response.content.decode()
    client.get("/accounts/?type=individual&q=warm-up")
    found, _ = _count(
        lambda: client.get("/accounts/?type=individual&q=bulk19", HTTP_HX_REQUEST="true")
    )
    assert later == last == PAGE_QUERIES
    if rum():  # the table in name order, in place of the count
        assert found == PAGE_QUERIES
    else:  # bulk19xxx sit at the end: the clustered plan
        assert found == PAGE_QUERIES - 2 + 5 + OWNERS


def test_it_lists_the_audit_log_in_constant_queries(
    crowded_tenant, api_a, client, admin_a, django_assert_max_num_queries
):
    from mailadmin.core.models import AuditEvent

    AuditEvent.objects.bulk_create(
        AuditEvent(
            tenant=admin_a.tenant,
            actor_name="admin-a",
            interface="api",
            action="principal.update",
            object_type="principal",
            object_id=str(i),
        )
        for i in range(300)
    )
    api_a.get("/api/")
    with django_assert_max_num_queries(4):  # token + actor, roles, page, count
        body = api_a.get("/api/audit?limit=100").json()["data"]
    with django_assert_max_num_queries(4):
        following = api_a.get(f"/api/audit?limit=100&cursor={body['next']}").json()["data"]
    assert body["items"][-1]["id"] > following["items"][0]["id"]
    client.force_login(admin_a)
    with django_assert_max_num_queries(7):  # session, actor, roles, ids, page, count, actions
        response = client.get("/accounts/audit/?page=3")
    assert "Page 3 of 6 · 300 in all" in response.content.decode()
