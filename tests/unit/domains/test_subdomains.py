"""A tenant cannot register a name under another tenant's domain (sub.a.example while
a.example is tenant A's) as a domain or an alias, by any path; the message names the
parent, never its tenant. A superadmin (or their API key) still may."""

from __future__ import annotations

import pytest

from apps.accounts.models import Principal, PrincipalType
from apps.domains import mailbox_services
from apps.domains.models import DomainAlias
from mailadmin.errors import ServiceError

pytestmark = pytest.mark.django_db
REFUSED = "sub.a.example is under a.example, a domain of another tenant."
HTMX = {"HTTP_HX_REQUEST": "true"}


def _no_domain(name: str = "sub.a.example") -> bool:
    return not Principal.objects.filter(name=name).exists()


def test_the_domains_api_refuses_it(api_b, domain_a):
    response = api_b.post("/api/domains", {"name": "Sub.A.example"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "name", "message": REFUSED}]
    assert _no_domain()


def test_the_principal_api_refuses_it(api_b, domain_a):
    response = api_b.post(
        "/api/principal", {"type": "domain", "name": "sub.a.example"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == REFUSED
    assert _no_domain()


def test_the_console_shows_it_beside_the_name(console, admin_b, domain_a):
    response = console(admin_b).post("/domains/new/", {"name": "sub.a.example"}, **HTMX)
    assert response.status_code == 422
    assert REFUSED in response.content.decode()
    assert _no_domain()


def test_any_depth_is_refused_naming_the_closest_parent(api_b, domain_a, make_domain, tenant_a):
    make_domain("sub.a.example", tenant=tenant_a)
    response = api_b.post("/api/domains", {"name": "x.sub.a.example"}, format="json")
    assert response.json()["detail"] == (
        "x.sub.a.example is under sub.a.example, a domain of another tenant."
    )
    assert _no_domain("x.sub.a.example")


def test_an_alias_is_refused_by_the_service_and_the_console(console, admin_b, domain_a, domain_b):
    with pytest.raises(ServiceError) as refused:
        mailbox_services.domain_alias_create(actor=admin_b, domain=domain_b, alias="sub.a.example")
    assert (refused.value.message, refused.value.field) == (REFUSED, "alias")
    response = console(admin_b).post(
        f"/domains/{domain_b.pk}/aliases/", {"alias": "sub.a.example"}, **HTMX
    )
    assert response.status_code == 422
    assert REFUSED in response.content.decode()
    assert not DomainAlias.objects.exists()


def test_a_name_under_another_tenants_alias_is_refused_too(api_a, api_b, admin_a, domain_a):
    mailbox_services.domain_alias_create(actor=admin_a, domain=domain_a, alias="alias-a.example")
    response = api_b.post("/api/domains", {"name": "sub.alias-a.example"}, format="json")
    assert response.json()["detail"] == (
        "sub.alias-a.example is under alias-a.example, a domain of another tenant."
    )
    own = api_a.post("/api/domains", {"name": "sub.alias-a.example"}, format="json")
    assert own.status_code == 200, own.content


def test_the_tenant_itself_may_add_its_own_subdomains(api_a, admin_a, domain_a, tenant_a):
    assert api_a.post("/api/domains", {"name": "sub.a.example"}, format="json").status_code == 200
    mailbox_services.domain_alias_create(actor=admin_a, domain=domain_a, alias="x.sub.a.example")
    assert Principal.objects.get(name="sub.a.example").tenant_id == tenant_a.pk


def test_a_superadmin_and_their_key_still_may(
    api_root, api_client_for, superadmin, domain_a, domain_b, tenant_b
):
    response = api_root.post(
        "/api/domains", {"name": "sub.a.example", "project_id": tenant_b.pk}, format="json"
    )
    assert response.status_code == 200, response.content
    key = Principal.objects.create(
        name="root-key", type=PrincipalType.API_KEY, created_by=superadmin,
        all_owner_permissions=True,
    )  # fmt: skip
    response = api_client_for(key).post(
        "/api/domains", {"name": "two.a.example", "project_id": tenant_b.pk}, format="json"
    )
    assert response.status_code == 200, response.content
    mailbox_services.domain_alias_create(actor=superadmin, domain=domain_b, alias="x.a.example")
    assert Principal.objects.get(name="sub.a.example").tenant_id == tenant_b.pk
