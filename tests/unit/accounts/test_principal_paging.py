"""Paging the principal API and the console lists: cursors past the OFFSET cap, clear 400s,
and one pager template on every list page."""

from __future__ import annotations

import pytest

from apps.accounts.models import Principal
from mailadmin.api import pagination
from mailadmin.core.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def sixty(world_a):
    Principal.objects.bulk_create(
        Principal(name=f"p{i:02}", type="individual", tenant=world_a.tenant, password="!")
        for i in range(60)
    )
    return world_a


def problem(response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["errors"][0]["field"], body["detail"]


def test_the_api_pages_on_by_cursor_past_the_offset_cap(api_a, sixty, monkeypatch):
    monkeypatch.setattr(pagination, "MAX_OFFSET", 20)
    url = "/api/principal?types=individual&limit=10"
    names = []
    data = api_a.get(url).json()["data"]
    while True:
        names += [i["name"] for i in data["items"]]
        if data["next"] is None:
            break
        data = api_a.get(f"{url}&cursor={data['next']}").json()["data"]
    assert names == ["admin-a", "jane-a", *(f"p{i:02}" for i in range(60))]
    assert data["total"] == 62 and data["previous"]


def test_the_api_answers_the_last_page(api_a, sixty):
    data = api_a.get("/api/principal?types=individual&limit=10&cursor=last").json()["data"]
    assert [i["name"] for i in data["items"]] == [f"p{i:02}" for i in range(50, 60)]
    assert data["next"] is None


def test_a_page_too_deep_is_a_400_that_points_at_the_cursor(api_a, sixty):
    status, field, detail = problem(api_a.get("/api/principal?page=300&limit=50"))
    assert (status, field) == (400, "page")
    assert detail == (
        "Invalid value for field page: Pages reach 10,000 items deep at most; page on with "
        "the cursor of a page (or cursor=last)."
    )
    assert problem(api_a.get("/api/principal?page=202&limit=50"))[:2] == (400, "page")
    assert api_a.get("/api/principal?page=201&limit=50").status_code == 200


def test_a_bad_cursor_is_a_400_naming_it(api_a, sixty):
    assert problem(api_a.get("/api/principal?cursor=zzz")) == (
        400,
        "cursor",
        "Invalid value for field cursor: The cursor is not one this server gave out.",
    )
    by_name = api_a.get("/api/principal?limit=5").json()["data"]["next"]
    status, field, detail = problem(api_a.get(f"/api/principal?order=-created&cursor={by_name}"))
    assert (status, field) == (400, "cursor") and "another ordering" in detail


def test_the_audit_api_pages_by_cursor(api_a, admin_a):
    AuditEvent.objects.bulk_create(
        AuditEvent(
            tenant=admin_a.tenant,
            interface="api",
            action="x",
            object_type="principal",
            object_id=str(i),
        )
        for i in range(15)
    )
    first = api_a.get("/api/audit?limit=10").json()["data"]
    rest = api_a.get(f"/api/audit?limit=10&cursor={first['next']}").json()["data"]
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 15


def test_the_schema_documents_the_cursor(api_a):
    schema = api_a.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/principal"]["get"]
    cursor = next(p for p in operation["parameters"] if p["name"] == "cursor")
    assert "10,000" in cursor["description"] and "last" in cursor["description"]


@pytest.mark.parametrize(
    "url, target",
    [
        ("/accounts/?type=individual", "#principal-table"),
        ("/accounts/audit/", "#audit-table"),
        ("/domains/", "#domain-table"),
    ],
)
def test_every_console_list_uses_the_one_pager(console_a, admin_a, sixty, url, target):
    for i in range(60):
        Principal.objects.create(
            name=f"d{i:02}.example", type="domain", tenant=admin_a.tenant, password="!"
        )
        AuditEvent.objects.create(
            tenant=admin_a.tenant, interface="api", action="x", object_type="principal"
        )
    body = console_a.get(url).content.decode()
    assert body.count('<nav aria-label="Pages" class="pagination">') == 1
    assert f'hx-target="{target}"' in body and 'rel="next"' in body and 'rel="last"' in body


def test_the_console_walks_past_the_offset_cap_by_cursor(console_a, sixty, monkeypatch):
    import html
    import re

    monkeypatch.setattr(pagination, "MAX_OFFSET", 0)  # only page 1 by number
    body = console_a.get("/accounts/?type=individual").content.decode()
    assert "Page 1 of 2 · 62 in all" in body
    following = html.unescape(re.search(r'href="([^"]+)"[^>]*rel="next"', body).group(1))
    assert following.startswith("?type=individual&sort=name&cursor=")
    later = console_a.get(f"/accounts/{following}").content.decode()
    assert "Last page · 62 in all" in later and "p59" in later and "p47" not in later
    assert 'rel="next"' not in later and 'rel="prev"' in later and 'rel="first"' in later
    last = console_a.get("/accounts/?type=individual&cursor=last").content.decode()
    assert "p10" in last and "p59" in last and "p09" not in last


def test_a_console_page_number_out_of_range_shows_the_first_page(console_a, sixty):
    for query in ("page=99999999999999999999", "page=-3", "cursor=garbage"):
        response = console_a.get(f"/accounts/?type=individual&{query}")
        assert response.status_code == 200
        assert "Page 1 of" in response.content.decode()
