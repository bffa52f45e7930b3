"""The list API and the list page cost a constant number of queries, whatever the size of
the tenant or the page (20,000 principals here)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Principal, PrincipalEmail
from apps.accounts.principals.services import builtin_role

pytestmark = pytest.mark.django_db
COUNT = 20_000
# token + actor, roles of the actor, page, count, 5 prefetches (emails, roles, member_of,
# members, role_holders).
API_QUERIES = 9
# session, actor, roles of the actor, page, count, 5 prefetches.
PAGE_QUERIES = 10


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
    large, _ = _count(lambda: api_a.get("/api/principal?limit=1000&page=3&filter=bulk1"))
    searched, _ = _count(lambda: api_a.get("/api/principal?filter=a.example&order=-created"))
    groups, response = _count(lambda: api_a.get("/api/principal?types=group,list"))
    assert small == large == searched == API_QUERIES
    assert groups == API_QUERIES - 1  # one page holds every group: no COUNT needed
    items = {i["name"]: i for i in response.json()["data"]["items"]}
    assert len(items["staff-a"]["members"]) == COUNT + 1


def test_it_shows_the_list_page_of_20000_principals_in_constant_queries(
    crowded_tenant, client, admin_a, django_assert_max_num_queries
):
    client.force_login(admin_a)
    with django_assert_max_num_queries(PAGE_QUERIES):
        response = client.get("/accounts/?type=individual")
    assert response.status_code == 200
    assert "Page 1 of 200+" in response.content.decode()
    later, _ = _count(lambda: client.get("/accounts/?type=individual&page=150&sort=-created"))
    partial, _ = _count(
        lambda: client.get("/accounts/?type=individual&q=bulk19", HTTP_HX_REQUEST="true")
    )
    assert later == partial == PAGE_QUERIES
