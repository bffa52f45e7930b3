"""/api/domains (domains-api.txt): register, list, get, delete inside a tenant; the same
rows as the `domain` principals of /api/principal; tenant isolation; query counts."""

from __future__ import annotations

import pytest

from apps.accounts.models import Principal, PrincipalEmail
from apps.domains import services
from apps.domains.models import DkimKey, DomainProfile
from mailadmin.core.models import AuditEvent

NOT_FOUND = {
    "type": "about:blank",
    "status": 404,
    "title": "Not Found",
    "detail": "The requested resource does not exist on this server.",
}


@pytest.fixture
def mailbox(make_principal, tenant_a, domain_a):
    """jane@a.example (only address on a.example) in tenant A."""
    jane = make_principal(tenant=tenant_a, name="jane")
    PrincipalEmail.objects.create(principal=jane, address="jane@a.example", position=0)
    return jane


# --- register ---------------------------------------------------------------------------


def test_it_registers_a_domain_in_the_actors_tenant(api_a, tenant_a, admin_a, settings):
    settings.MAILADMIN_HOSTNAME = "mx.host.example"
    response = api_a.post("/api/domains", {"name": "New.Example"}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    domain = Principal.objects.get(name="new.example")
    assert (domain.type, domain.tenant_id) == ("domain", tenant_a.pk)
    assert data == {
        "id": domain.pk,
        "project_id": tenant_a.pk,
        "name": "new.example",
        "unicode_name": "new.example",
        "status": "unknown",
        "mailbox_total_count": 0,
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
        "webmail_url": "https://mx.host.example/",
        "imap_url": "imaps://mx.host.example:993",
        "pop3_url": "pop3s://mx.host.example:995",
        "smtp_url": "smtps://mx.host.example:465",
    }
    assert data["created_at"].endswith("Z") or "+" in data["created_at"]
    event = AuditEvent.objects.get(action="principal.create", object_id=str(domain.pk))
    assert event.actor_id == admin_a.pk


@pytest.mark.parametrize("name", ["bücher.example", "xn--bcher-kva.example", "BÜCHER.Example."])
def test_it_registers_idn_domains_in_unicode_or_punycode(api_a, name):
    response = api_a.post("/api/domains", {"name": name}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["name"], data["unicode_name"]) == ("xn--bcher-kva.example", "bücher.example")


def test_it_is_the_same_object_as_the_domain_principal(api_a):
    domain_id = api_a.post("/api/domains", {"name": "same.example"}, format="json").json()["data"][
        "id"
    ]
    principal = api_a.get(f"/api/principal/{domain_id}").json()["data"]
    assert (principal["type"], principal["name"]) == ("domain", "same.example")
    created = api_a.post(
        "/api/principal", {"type": "domain", "name": "other.example"}, format="json"
    ).json()["data"]
    assert api_a.get(f"/api/domains/{created}").json()["data"]["name"] == "other.example"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "name", "Missing required field: name"),
        (
            {"name": "no_dots"},
            "name",
            "Invalid value for field name: 'no_dots' is not a valid domain name.",
        ),
        ({"name": "a.example", "extra": 1}, "extra", "Unrecognized field: extra"),
        ({"name": 5}, "name", "Invalid value for field name: Not a valid string."),
    ],
)
def test_it_refuses_bad_input_naming_the_field(api_a, body, field, message):
    response = api_a.post("/api/domains", body, format="json")
    assert response.status_code == 400
    problem = response.json()
    assert problem["detail"] == message
    assert problem["errors"] == [{"field": field, "message": message}]


def test_it_refuses_a_taken_name(api_a, api_b):
    assert api_a.post("/api/domains", {"name": "x.example"}, format="json").status_code == 200
    response = api_b.post("/api/domains", {"name": "X.example"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "The name 'x.example' is already taken."


def test_it_keeps_a_tenant_admin_in_their_own_project(api_a, tenant_b):
    response = api_a.post(
        "/api/domains", {"name": "x.example", "project_id": tenant_b.pk}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "project_id", "message": f"No such project: {tenant_b.pk}"}
    ]
    assert not Principal.objects.filter(name="x.example").exists()


def test_it_needs_a_project_from_a_superadmin(api_root, tenant_b):
    response = api_root.post("/api/domains", {"name": "x.example"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Missing required field: project_id"
    response = api_root.post(
        "/api/domains", {"name": "x.example", "project_id": tenant_b.pk}, format="json"
    )
    assert response.status_code == 200
    assert Principal.objects.get(name="x.example").tenant_id == tenant_b.pk


def test_it_holds_the_tenants_domain_limit(api_a, tenant_a, domain_a):
    tenant_a.max_domains = 1
    tenant_a.save()
    response = api_a.post("/api/domains", {"name": "two.example"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Tenant tenant-a has reached its limit of 1 domains."


def test_it_needs_domain_create(api_client_for, make_principal, tenant_a):
    reader = make_principal(tenant=tenant_a, roles=(), enabled_permissions=["domain-list"])
    response = api_client_for(reader).post("/api/domains", {"name": "x.example"}, format="json")
    assert response.status_code == 403
    assert response.json()["permission"] == "domain-create"


# --- list -------------------------------------------------------------------------------


@pytest.fixture
def many_domains(make_domain, tenant_a, tenant_b):
    names = [f"d{i:02d}.example" for i in range(12)]
    for name in names:
        make_domain(name, tenant=tenant_a)
    make_domain("foreign.example", tenant=tenant_b)
    return names


def test_it_lists_only_the_tenants_domains_with_paging(api_a, many_domains):
    response = api_a.get("/api/domains", {"page": 2, "page_size": 5})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["total_count"] == 12
    assert [d["name"] for d in data["domains"]] == many_domains[5:10]


def test_it_orders_and_searches(api_a, many_domains, make_domain, tenant_a):
    make_domain("xn--bcher-kva.example", tenant=tenant_a)
    names = [
        d["name"]
        for d in api_a.get("/api/domains", {"order_by": "name_desc", "page_size": 3}).json()[
            "data"
        ]["domains"]
    ]
    assert names == ["xn--bcher-kva.example", "d11.example", "d10.example"]
    latest = api_a.get("/api/domains", {"order_by": "created_at_desc", "page_size": 1})
    assert latest.json()["data"]["domains"][0]["name"] == "xn--bcher-kva.example"
    found = api_a.get("/api/domains", {"search": "BÜCHER"}).json()["data"]
    assert (found["total_count"], found["domains"][0]["unicode_name"]) == (1, "bücher.example")


def test_it_counts_mailboxes_and_shows_the_dns_status(api_a, domain_a, mailbox, make_principal):
    group = make_principal(tenant=domain_a.tenant, name="sales", type="group", password="")
    PrincipalEmail.objects.create(principal=group, address="sales@a.example")
    PrincipalEmail.objects.create(principal=mailbox, address="j2@a.example", position=1)
    DomainProfile.objects.create(domain=domain_a, tenant_id=domain_a.tenant_id, dns_status="ok")
    item = api_a.get("/api/domains").json()["data"]["domains"][0]
    assert (item["mailbox_total_count"], item["status"]) == (2, "ok")


def test_it_filters_by_project_without_revealing_others(api_a, api_root, many_domains, tenant_b):
    assert api_a.get("/api/domains", {"project_id": tenant_b.pk}).json()["data"] == {
        "total_count": 0,
        "domains": [],
    }
    data = api_root.get("/api/domains", {"project_id": tenant_b.pk}).json()["data"]
    assert [d["name"] for d in data["domains"]] == ["foreign.example"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"order_by": "size"}, 'Invalid value for field order_by: "size" is not a valid choice.'),
        (
            {"page": 0},
            "Invalid value for field page: Ensure this value is greater than or equal to 1.",
        ),
        (
            {"page_size": 1001},
            "Invalid value for field page_size: Ensure this value is less than or equal to 1000.",
        ),
        ({"limit": 5}, "Unrecognized field: limit"),
    ],
)
def test_it_refuses_bad_list_parameters(api_a, query, message):
    response = api_a.get("/api/domains", query)
    assert response.status_code == 400
    assert response.json()["detail"] == message


def test_it_lists_a_page_in_constant_queries(
    api_a, many_domains, make_principal, tenant_a, django_assert_max_num_queries
):
    for i in range(10):
        person = make_principal(tenant=tenant_a, name=f"p{i}")
        PrincipalEmail.objects.create(principal=person, address=f"p{i}@d0{i % 3}.example")
    # auth (token + principal + roles), the page, the count, the mailbox counts
    with django_assert_max_num_queries(7):
        response = api_a.get("/api/domains", {"page_size": 5, "page": 1})
    counts = [d["mailbox_total_count"] for d in response.json()["data"]["domains"]]
    assert counts == [4, 3, 3, 0, 0]


# --- get --------------------------------------------------------------------------------


def test_it_gets_a_domain_by_id_or_name(api_a, domain_a, mailbox):
    by_id = api_a.get(f"/api/domains/{domain_a.pk}")
    assert by_id.status_code == 200
    assert by_id.json()["data"]["mailbox_total_count"] == 1
    assert api_a.get("/api/domains/A.Example").json() == by_id.json()


def test_it_answers_404_for_another_tenants_domain(api_a, domain_b):
    for method in ("get", "delete"):
        response = getattr(api_a, method)(f"/api/domains/{domain_b.pk}?confirm=true")
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert Principal.objects.filter(pk=domain_b.pk).exists()


def test_it_answers_xml(api_a, domain_a):
    response = api_a.get(f"/api/domains/{domain_a.pk}", HTTP_ACCEPT="application/xml")
    assert response.status_code == 200
    assert b"<name>a.example</name>" in response.content
    assert b"<status>unknown</status>" in response.content


# --- delete -----------------------------------------------------------------------------


def test_it_deletes_an_empty_domain_with_its_dkim_keys(api_a, domain_a, admin_a):
    services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="ed25519")
    response = api_a.delete(f"/api/domains/{domain_a.pk}")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["name"] == "a.example"
    assert data["removed"] == {"mailboxes": [], "addresses": [], "dkim_keys": 1}
    assert not Principal.objects.filter(pk=domain_a.pk).exists()
    assert not DkimKey.objects.exists()


def test_it_asks_for_confirmation_before_deleting_mailboxes(api_a, domain_a, mailbox):
    response = api_a.delete(f"/api/domains/{domain_a.pk}")
    assert response.status_code == 409
    assert response.json() == {
        "type": "about:blank",
        "status": 409,
        "title": "Conflict",
        "detail": "The domain a.example has 1 mailbox(es) with 1 address(es) "
        "(jane@a.example); deleting it deletes them too. "
        "Repeat the request with confirm=true to go ahead.",
    }
    assert Principal.objects.filter(pk__in=[domain_a.pk, mailbox.pk]).count() == 2


def test_it_names_at_most_five_addresses_in_the_refusal(api_a, domain_a, mailbox):
    for i in range(1, 7):
        PrincipalEmail.objects.create(principal=mailbox, address=f"j{i}@a.example", position=i)
    detail = api_a.delete(f"/api/domains/{domain_a.pk}").json()["detail"]
    assert detail.startswith(
        "The domain a.example has 1 mailbox(es) with 7 address(es) (jane@a.example, "
        "j1@a.example, j2@a.example, j3@a.example, j4@a.example and 2 more); "
    )


def test_it_gets_and_refuses_a_delete_in_queries_however_many_mailboxes(
    api_a, domain_a, mailbox, make_principal, tenant_a, django_assert_max_num_queries
):
    for i in range(5):
        other = make_principal(tenant=tenant_a, name=f"m{i}")
        PrincipalEmail.objects.create(principal=other, address=f"m{i}@a.example")
    with django_assert_max_num_queries(6):
        assert api_a.get(f"/api/domains/{domain_a.pk}").status_code == 200
    # + the domain again inside the service, its mailboxes, the savepoints
    with django_assert_max_num_queries(9):
        assert api_a.delete(f"/api/domains/{domain_a.pk}").status_code == 409


def test_it_deletes_mailboxes_when_confirmed_and_says_what_went(
    api_a, domain_a, mailbox, make_principal, make_domain, tenant_a
):
    make_domain("other.example", tenant=tenant_a)
    bob = make_principal(tenant=tenant_a, name="bob")
    PrincipalEmail.objects.create(principal=bob, address="bob@other.example", position=0)
    PrincipalEmail.objects.create(principal=bob, address="bob@a.example", position=1)
    response = api_a.delete(f"/api/domains/{domain_a.pk}?confirm=true")
    assert response.status_code == 200, response.content
    assert response.json()["data"]["removed"] == {
        "mailboxes": ["jane"],
        "addresses": ["bob@a.example", "jane@a.example"],
        "dkim_keys": 0,
    }
    assert not Principal.objects.filter(pk__in=[domain_a.pk, mailbox.pk]).exists()
    assert list(bob.emails.values_list("address", flat=True)) == ["bob@other.example"]
    deleted = AuditEvent.objects.filter(action="principal.delete")
    assert sorted(e.object_repr for e in deleted) == ["a.example", "jane"]


def test_it_refuses_a_bad_confirm_value(api_a, domain_a):
    response = api_a.delete(f"/api/domains/{domain_a.pk}?confirm=maybe")
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid value for field confirm: Must be a valid boolean."


def test_it_refuses_an_empty_format_like_any_unknown_one(api_a):
    response = api_a.get("/api/domains?format=")
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid value for field format: use json or xml."
