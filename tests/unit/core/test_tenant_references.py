"""Tenant A's names inside tenant B's requests: an address on A's domain, A's domain
alias, a principal named as one of A's addresses. B can take none of them, and the
answer says nothing about whether A has the thing named (the words are those for a name
nobody has, or for a domain that is not B's)."""

from __future__ import annotations

import re

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


# --- references already refused (these pass without the fixes above) ----------------------

FETCH = {
    "host": "127.0.0.1",
    "type": "imap",
    "port": 1143,
    "security": "none",
    "username": "remote-user",
    "password": "remote-secret",
}


def test_the_console_catch_all_naming_a_mailbox_of_a_answers_as_for_a_missing_one(
    world_a, world_b, client, admin_b
):
    client.force_login(admin_b)
    url = f"/domains/{world_b.domain.pk}/catch-all/"
    before = state()
    pages = []
    for address in ("jane@a.example", "nobody@a.example"):
        response = client.post(url, {"target": address}, HTTP_HX_REQUEST="true")
        assert response.status_code == 422
        page = response.content.decode().replace(address, "X")
        pages.append(re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page))
    assert pages[0] == pages[1]
    assert "No account of this tenant has the address X." in pages[0]
    assert state() == before


def test_an_alias_naming_a_domain_of_a_is_refused_like_any_registered_domain(
    world_a, world_b, admin_b
):
    from apps.domains import mailbox_services
    from mailadmin.errors import ValidationFailed

    before = state()
    for alias, detail in (
        (
            "a.example",
            "The domain a.example is registered here; an alias must be a name of its own.",
        ),  # noqa: E501
        ("a-corp.example", "a-corp.example is already an alias."),
    ):
        with pytest.raises(ValidationFailed) as refused:
            mailbox_services.domain_alias_create(actor=admin_b, domain=world_b.domain, alias=alias)
        assert refused.value.message == detail
    assert state() == before


def test_a_catch_all_or_fetch_job_naming_a_mailbox_of_a_is_refused_as_unknown(
    world_a, world_b, api_b, admin_b
):
    from apps.domains import mailbox_services
    from mailadmin.errors import ValidationFailed

    before = state()
    messages = []
    for address in ("jane@a.example", "nobody@a.example"):
        with pytest.raises(ValidationFailed) as refused:
            mailbox_services.catch_all_set(actor=admin_b, domain=world_b.domain, target=address)
        messages.append(refused.value.message.replace(address, "X"))
        response = api_b.post("/api/fetch/mailboxes", {**FETCH, "mailbox": address}, format="json")
        assert response.status_code == 400
        messages.append(response.json()["detail"].replace(address, "X"))
    assert messages[:2] == messages[2:]  # A's real mailbox answers as a missing one
    assert messages[:2] == [
        "No account of this tenant has the address X.",
        "No mailbox here has the address X.",
    ]
    assert state() == before


def test_a_group_or_list_of_b_cannot_hold_principals_of_a(world_a, world_b, api_b):
    before = state()
    for kind in ("group", "list"):
        response = api_b.post(
            "/api/principal",
            {"type": kind, "name": f"probe-{kind}", "members": ["jane@a.example"]},
            format="json",
        )
        assert response.status_code == 400
        assert response.json()["detail"] == "No such principal: jane@a.example"
    assert state() == before
