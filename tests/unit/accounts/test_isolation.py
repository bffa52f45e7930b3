"""The isolation matrix: tenant B's admin acting on tenant A's principals through every
principal API route and console page gets 404 (never 403, never data), changes nothing,
and no list, filter, search or sort shows or counts a foreign row."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from apps.accounts.models import Principal, PrincipalEmail
from apps.accounts.principals import api_urls, urls

pytestmark = pytest.mark.django_db

PATCH_BODY = [{"action": "set", "field": "description", "value": "pwned"}]
NOT_FOUND_DETAIL = "The requested resource does not exist on this server."
FORM_BODY = {
    "name": "pwned",
    "description": "pwned",
    "roles": ["user"],
    "members": "admin-b",
    "enabledPermissions": ["principal-list"],
}

# (method, url template, body): every route that acts on one principal.
OBJECT_ROUTES = [
    ("GET", "/api/principal/{id}", None),
    ("GET", "/api/principal/{name}", None),
    ("PATCH", "/api/principal/{id}", PATCH_BODY),
    ("PATCH", "/api/principal/{name}", PATCH_BODY),
    ("DELETE", "/api/principal/{id}", None),
    ("DELETE", "/api/principal/{name}", None),
    ("GET", "/accounts/{id}/", None),
    ("GET", "/accounts/{id}/edit/", None),
    ("POST", "/accounts/{id}/edit/", FORM_BODY),
    ("GET", "/accounts/{id}/memberships/", None),
    ("POST", "/accounts/{id}/memberships/", FORM_BODY),
    ("GET", "/accounts/{id}/permissions/", None),
    ("POST", "/accounts/{id}/permissions/", FORM_BODY),
    ("GET", "/accounts/{id}/delete/", None),
    ("POST", "/accounts/{id}/delete/", None),
]
# Routes over many principals (or creating one); checked by the list tests below.
COLLECTION_ROUTES = [
    ("GET", "/api/principal"),
    ("POST", "/api/principal"),
    ("GET", "/api/audit"),
    ("GET", "/accounts/"),
    ("GET", "/accounts/new/"),
    ("POST", "/accounts/new/"),
    ("GET", "/accounts/audit/"),
]
TARGETS = ["tenant", "admin", "domain", "account", "group", "mailing_list", "role"]
SEARCHES = ["", "a", "jane", "jane-a", "a.example", "jane@a.example", "tenant-a", "staff", "Jane a"]


def _client(kind: str, api_b, client, admin_b):
    if kind == "api":
        return api_b
    client.force_login(admin_b)
    return client


def _send(c, method: str, url: str, body):
    if url.startswith("/api/"):
        return (
            c.generic(method, url, data=None)
            if body is None
            else getattr(c, method.lower())(url, body, format="json")
        )
    return getattr(c, method.lower())(url, body or {})


def _snapshot(principal: Principal):
    principal = Principal.objects.filter(pk=principal.pk).first()
    if principal is None:
        return None
    return (
        principal.name,
        principal.description,
        principal.password,
        sorted(principal.enabled_permissions),
        sorted(principal.roles.values_list("pk", flat=True)),
        sorted(principal.members.values_list("pk", flat=True)),
        sorted(principal.role_holders.values_list("pk", flat=True)),
        sorted(principal.emails.values_list("address", flat=True)),
    )


@pytest.mark.parametrize(("method", "template", "body"), OBJECT_ROUTES)
def test_it_answers_404_to_another_tenants_admin(
    method, template, body, world_a, world_b, superadmin, api_b, client, admin_b
):
    builtin = Principal.objects.get(name="tenant-admin", tenant=None)
    targets = [getattr(world_a, t) for t in TARGETS] + [superadmin, builtin]
    c = _client("api" if template.startswith("/api/") else "html", api_b, client, admin_b)
    for obj in targets:
        before = _snapshot(obj)
        url = template.format(id=obj.pk, name=obj.name)
        response = _send(c, method, url, body)
        assert response.status_code == 404, (method, url, response.status_code)
        if url.startswith("/api/"):
            assert response.json()["detail"] == NOT_FOUND_DETAIL
        else:
            assert obj.name not in response.content.decode()
        assert _snapshot(obj) == before, (method, url)


def test_it_covers_every_accounts_url_pattern():
    """A new route must join the matrix: every named pattern is exercised above."""
    exercised = set()
    for _, template, _ in OBJECT_ROUTES:
        exercised.add(resolve(template.format(id=1, name="x.y")).url_name)
    for _, url in COLLECTION_ROUTES:
        exercised.add(resolve(url).url_name)

    def names(patterns) -> set[str]:
        found = set()
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                found |= names(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                assert pattern.name, f"unnamed pattern {pattern.pattern}"
                found.add(pattern.name)
        return found

    declared = names(urls.urlpatterns) | names(api_urls.urlpatterns)
    assert declared <= exercised, declared - exercised
    assert get_resolver()  # the project URLconf imports cleanly


# --- lists, filters, search and sort -------------------------------------------------------


@pytest.fixture
def foreign_activity(world_a, api_client_for):
    """Tenant A writes audit rows, so the audit lists have something to leak."""
    api = api_client_for(world_a.admin)
    api.patch("/api/principal/jane-a", PATCH_BODY, format="json")
    api.delete("/api/principal/helpdesk-a")
    return world_a


def _foreign_names(world) -> set[str]:
    names = set(Principal.objects.filter(tenant=world.tenant).values_list("name", flat=True))
    return names | {world.tenant.name}


@pytest.mark.parametrize("order", ["name", "-name", "created", "-created", "type"])
def test_it_never_lists_foreign_principals_in_the_api(order, foreign_activity, world_b, api_b):
    foreign = _foreign_names(foreign_activity)
    foreign_addresses = PrincipalEmail.objects.filter(principal__tenant=foreign_activity.tenant)
    types = "individual,group,list,domain,tenant,role,apiKey"
    own = Principal.objects.filter(tenant=world_b.tenant).prefetch_related("emails")
    for search in SEARCHES:
        response = api_b.get(
            "/api/principal", {"filter": search, "order": order, "types": types, "limit": 1000}
        )
        assert response.status_code == 200
        data = response.json()["data"]
        assert all(item["tenant"] == "tenant-b" for item in data["items"]), search
        assert not foreign & {item["name"] for item in data["items"]}, search
        needle = search.lower()
        matching = [
            p
            for p in own
            if needle in p.name.lower()
            or needle in p.description.lower()
            or any(needle in e.address for e in p.emails.all())
        ]
        assert data["total"] == len(matching), search  # counts leak nothing either
        text = response.content.decode()
        for address in foreign_addresses:
            assert address.address not in text


@pytest.mark.parametrize(
    "tab", ["individual", "group", "list", "domain", "tenant", "role", "apiKey"]
)
def test_it_never_lists_foreign_principals_on_the_page(
    tab, foreign_activity, world_b, client, admin_b
):
    client.force_login(admin_b)
    foreign = list(Principal.objects.filter(tenant=foreign_activity.tenant))
    for search in SEARCHES:
        for sort in ("name", "-created"):
            response = client.get("/accounts/", {"type": tab, "q": search, "sort": sort})
            assert response.status_code == 200
            text = response.content.decode()
            for principal in foreign:
                assert f'href="/accounts/{principal.pk}/"' not in text, (search, sort)
                assert f">{principal.name}</a>" not in text, (search, sort)
            assert "jane@a.example" not in text.replace(f'value="{search}"', "").replace(
                f"“{search}”", ""
            )


def test_it_never_shows_foreign_audit_rows(foreign_activity, world_b, api_b, client, admin_b):
    api_b.patch("/api/principal/jane-b", PATCH_BODY, format="json")
    for query in ("", "?action=principal.delete", "?actor=admin-a", "?object_type=principal"):
        items = api_b.get(f"/api/audit{query}").json()["data"]["items"]
        assert all(i["objectRepr"] == "jane-b" for i in items), query
    client.force_login(admin_b)
    for query in ("", "?action=principal.delete", "?actor=admin-a"):
        page = client.get(f"/accounts/audit/{query}").content.decode()
        assert "jane-a" not in page and "helpdesk-a" not in page
        assert not re.search(r"<td>admin-a</td>", page)


def test_it_cannot_reach_foreign_principals_when_creating(foreign_activity, world_b, api_b):
    world_a = foreign_activity
    for field, value in (
        ("memberOf", ["staff-a"]),
        ("lists", ["all-a"]),
        ("roles", ["helpdesk-a"]),
    ):
        body = {"type": "individual", "name": "probe", field: value}
        response = api_b.post("/api/principal", body, format="json")
        assert response.status_code == 400
        assert response.json()["detail"] == f"No such principal: {value[0]}"
    group = api_b.post(
        "/api/principal", {"type": "group", "name": "probe", "members": ["jane-a"]}, format="json"
    )
    assert group.json()["detail"] == "No such principal: jane-a"
    taken = api_b.post(
        "/api/principal",
        {"type": "individual", "name": "probe", "emails": ["jane@a.example"]},
        format="json",
    )
    assert taken.json()["detail"] == "The domain a.example is not a domain of this tenant."
    assert not Principal.objects.filter(name="probe").exists()
    assert world_a.group.members.count() == 1


def test_it_cannot_create_in_a_foreign_tenant_from_the_console(
    foreign_activity, world_b, client, admin_b
):
    client.force_login(admin_b)
    response = client.post(
        "/accounts/new/?type=group", {"name": "probe", "tenant": "tenant-a", "members": "jane-a"}
    )
    # The form has no tenant field for tenant admins: the group lands in tenant B.
    assert response.status_code == 302
    assert Principal.objects.get(name="probe").tenant == world_b.tenant
