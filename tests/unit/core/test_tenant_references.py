"""Tenant A's names inside tenant B's requests: an address on A's domain, A's domain
alias, a principal named as one of A's addresses. B can take none of them, and the
answer says nothing about whether A has the thing named (the words are those for a name
nobody has, or for a domain that is not B's)."""

from __future__ import annotations

import pytest

from apps.accounts.models import Principal
from tests.support.tenant_world import state

pytestmark = pytest.mark.django_db

GOOD = {"displayName": "The CEO", "password": "Secret123!@#", "size": "2048"}
NOT_OURS = "The domain a.example is not a domain of this tenant."


def _provisioning(tenant, domain: str, name: str, address: str = "") -> str:
    url = f"/api/customers/{tenant.pk}/domains/{domain}/mailboxes/{name}"
    return url + (f"/emailaddresses/{address}" if address else "")


def test_an_extra_address_on_a_foreign_domain_says_nothing_about_its_owner(world_a, world_b, api_b):
    """Taken (jane@a.example) or free (nobody@a.example), an address on tenant A's domain
    gets one answer: the domain is not B's. "Already in use" would tell B that A has it."""
    before = state()
    answers = []
    for address in ("jane@a.example", "nobody@a.example", "JANE@A.EXAMPLE"):
        response = api_b.post(_provisioning(world_b.tenant, "b.example", "jane", address))
        answers.append((response.status_code, response.json()["detail"]))
    assert answers == [(400, NOT_OURS)] * 3
    assert state() == before


def test_registering_a_foreign_alias_does_not_name_its_domain(world_a, world_b, api_b):
    response = api_b.post("/api/domains", {"name": "a-corp.example"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "The name 'a-corp.example' is already taken."
    # Its own alias: B is told which of its domains has it.
    response = api_b.post("/api/domains", {"name": "b-corp.example"}, format="json")
    assert response.json()["detail"] == (
        "The domain b-corp.example is an alias of b.example; remove the alias first."
    )


def test_a_foreign_alias_cannot_become_a_domain_and_take_its_mail(
    world_a, world_b, api_b, make_principal
):
    """Mail to x@a-corp.example is tenant A's: hosted domains are looked up before aliases,
    so a domain of that name in tenant B would take it."""
    from apps.store.recipients import hosted_address

    before = state()
    created = api_b.post(
        "/api/principal", {"type": "domain", "name": "a-corp.example"}, format="json"
    )
    make_principal(tenant=world_b.tenant, roles=(), name="c.example", type="domain", password="")
    renamed = api_b.patch(
        "/api/principal/c.example",
        [{"action": "set", "field": "name", "value": "A-Corp.Example"}],
        format="json",
    )
    for response in (created, renamed):
        assert response.status_code == 400, response.content
        assert response.json()["detail"] == "The name 'a-corp.example' is already taken."
    assert state()["aliases"] == before["aliases"]
    assert hosted_address("jane@a-corp.example") == ("jane@a.example", world_a.domain)


@pytest.mark.parametrize("kind", ["individual", "group", "list", "role", "apiKey"])
@pytest.mark.parametrize("name", ["ceo@a.example", "ceo@A.Example", "ceo@a-corp.example"])
def test_no_principal_of_b_is_named_as_an_address_of_a(kind, name, world_a, world_b, api_b):
    """A name is a login name, and holds its address against new mailboxes: one of B's
    named ceo@a.example would lock A out of creating ceo@a.example, and log in for it."""
    if kind == "apiKey":
        response = api_b.post("/api/account/api-keys", {"name": name}, format="json")
    else:
        response = api_b.post("/api/principal", {"type": kind, "name": name}, format="json")
    assert response.status_code == 400, response.content
    shown = "a-corp.example" if "corp" in name else "a.example"
    assert response.json()["detail"] == f"The domain {shown} is not a domain of this tenant."
    assert not Principal.objects.filter(name__iexact=name).exists()


def test_no_principal_of_b_is_renamed_to_an_address_of_a(world_a, world_b, api_b, api_a):
    staff = api_b.post("/api/principal", {"type": "group", "name": "staff"}, format="json")
    assert staff.status_code == 200
    response = api_b.patch(
        "/api/principal/staff",
        [{"action": "set", "field": "name", "value": "ceo@a.example"}],
        format="json",
    )
    assert (response.status_code, response.json()["detail"]) == (400, NOT_OURS)
    # So tenant A still creates its mailbox ceo@a.example.
    response = api_a.post(_provisioning(world_a.tenant, "a.example", "ceo"), dict(GOOD))
    assert response.status_code == 200, response.content


def test_names_on_own_and_unhosted_domains_are_still_fine(world_b, api_b):
    for name in ("desk@b.example", "desk@b-corp.example", "old@elsewhere.example"):
        response = api_b.post("/api/principal", {"type": "group", "name": name}, format="json")
        assert response.status_code == 200, (name, response.content)
