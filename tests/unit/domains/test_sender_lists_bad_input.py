"""Bad input to every spam list and settings endpoint: the spec's message, never a 500."""

from __future__ import annotations

import pytest

from apps.spamfilter.models import MailboxSpamSetting, SenderListEntry
from tests.unit.domains.test_sender_lists_api import _settings_url, _url

pytestmark = pytest.mark.django_db

GOOD = {"displayName": "Alex Smith", "password": "Secret123!@#", "size": "2048"}


@pytest.fixture
def alex(api_a, tenant_a, domain_a):
    url = f"/api/customers/{tenant_a.pk}/domains/a.example/mailboxes/alex.smith"
    assert api_a.post(url, GOOD).status_code == 200


ODD = ["abc", "a@", "@b.example", "a@@b.example", "..", "a..b", "-", "%00", "a%0Ab.example",
       "x" * 300, "ä@", "a@b.example/24", "1.2.3.4/99", "::g", "[1.2.3.4]", "*.spam.com",
       "a b.example", "a@-b.example", "a\tb@c.example"]  # fmt: skip


@pytest.mark.parametrize("list_name", ["blacklist", "safelist", "ipblacklist", "ipsafelist"])
@pytest.mark.parametrize("entry", ODD)
def test_odd_entries_are_400_or_stored_never_500(api_a, tenant_a, alex, list_name, entry):
    for method in ("post", "delete"):
        response = getattr(api_a, method)(_url(tenant_a, list_name, entry))
        assert response.status_code in (200, 400, 404), (method, response.content)
        if response.status_code == 400:
            detail = response.json()["detail"]
            word = "ip address" if list_name.startswith("ip") else "email address"
            assert detail.startswith(f"invalid {word}: ") or "is not found on the" in detail


def test_the_current_domain_is_refused_however_it_is_written(api_a, tenant_a, alex):
    for entry in ("A.EXAMPLE", "a.example.", " a.example"):
        response = api_a.post(_url(tenant_a, "blacklist", entry))
        assert response.status_code == 400, entry
        assert response.json()["detail"] == "Adding a.example would blacklist the current domain"
    assert not SenderListEntry.objects.exists()


@pytest.mark.parametrize(
    ("body", "fmt", "message"),
    [
        ({}, "json", "Missing required field: filterlevel"),
        ({"sendtodomainquarantine": "true"}, None, "Missing required field: filterlevel"),
        ({"filterlevel": ""}, None, "Required field filterlevel cannot be empty"),
        ({"filterlevel": None}, "json", "Required field filterlevel cannot be empty"),
        ({"filterlevel": "  "}, "json", "Required field filterlevel cannot be empty"),
        ({"filterlevel": "maybe"}, None, "Invalid filterLevel, input must be: on/off/exclusive"),
        ({"filterlevel": 1}, "json", "Invalid filterLevel, input must be: on/off/exclusive"),
        ({"filterlevel": ["on"]}, "json", "Invalid filterLevel, input must be: on/off/exclusive"),
        ({"filterlevel": {"a": 1}}, "json", "Invalid filterLevel, input must be: on/off/exclusive"),
        ({"filterlevel": True}, "json", "Invalid filterLevel, input must be: on/off/exclusive"),
        (
            {"filterlevel": "on", "sendtodomainquarantine": "yes"},
            None,
            "Invalid format for sendtodomainquarantine, input must be true or false",
        ),
        (
            {"filterlevel": "on", "sendtodomainquarantine": 1},
            "json",
            "Invalid format for sendtodomainquarantine, input must be true or false",
        ),
        (
            {"filterlevel": "on", "sendtodomainquarantine": None},
            "json",
            "Invalid format for sendtodomainquarantine, input must be true or false",
        ),
        ({"filterlevel": "on", "address": "x"}, None, "Unrecognized field: address"),
        ({"filterlevel": "on", "quarantineowner": "abc"}, None, "invalid email address: abc"),
        ({"filterlevel": "on", "quarantineowner": 5}, "json", "invalid email address: 5"),
        ({"filterlevel": "on", "quarantineowner": ["a@b.example"]}, "json",
         "invalid email address: ['a@b.example']"),
    ],
)  # fmt: skip
def test_each_bad_setting_gets_the_spec_message(api_a, tenant_a, alex, body, fmt, message):
    response = api_a.put(_settings_url(tenant_a), body, format=fmt)
    assert response.status_code == 400, response.content
    assert response.json()["detail"] == message
    assert not MailboxSpamSetting.objects.exists()


def test_odd_bodies_are_400_never_500(api_a, tenant_a, alex):
    url = _settings_url(tenant_a)
    for body, content_type in [
        (b"[1, 2]", "application/json"),
        (b'"on"', "application/json"),
        (b"{", "application/json"),
        (b"<settings><filterlevel><x/></filterlevel></settings>", "application/xml"),
        (b"<settings>", "application/xml"),
        (b"filterlevel=on&filterlevel=off", "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "application/x-www-form-urlencoded"),
    ]:
        response = api_a.generic("PUT", url, body, content_type=content_type)
        assert response.status_code in (200, 400), (body, response.content)


def test_a_parent_of_the_current_domain_is_refused_too(api_a, tenant_a, make_principal, domain_a):
    """A domain entry covers its subdomains: blocking example's parent blocks the domain."""
    make_principal(tenant=tenant_a, roles=(), name="mail.a.example", type="domain", password="")
    url = f"/api/customers/{tenant_a.pk}/domains/mail.a.example/mailboxes/alex"
    assert api_a.post(url, GOOD).status_code == 200
    response = api_a.post(_url(tenant_a, "blacklist", "A.example", "alex", "mail.a.example"))
    assert response.status_code == 400
    assert response.json()["detail"] == "Adding a.example would blacklist the current domain"
    # A subdomain of it, another domain, and the safe list are fine.
    for list_name, entry in [("blacklist", "x.mail.a.example"), ("blacklist", "b.example"),
                             ("safelist", "a.example")]:  # fmt: skip
        response = api_a.post(_url(tenant_a, list_name, entry, "alex", "mail.a.example"))
        assert response.status_code == 200, (entry, response.content)


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "spam/blacklist"), ("get", "spam/ipsafelist"), ("post", "spam/safelist/a.example2"),
     ("delete", "spam/ipblacklist/10.0.0.1"), ("get", "spam/settings"), ("put", "spam/settings")],
)  # fmt: skip
def test_every_list_and_settings_endpoint_has_the_specs_404s(api_a, tenant_a, alex, method, path):
    base = f"/api/customers/{tenant_a.pk}/domains"
    call = getattr(api_a, method)
    response = call(f"{base}/a.example/mailboxes/alex.smith/{path}?format=csv")
    assert (response.status_code, response.json()["detail"]) == (404, "Invalid format")
    response = call(f"{base}/abc.com/mailboxes/alex.smith/{path}", {"filterlevel": "on"})
    assert (response.status_code, response.json()["detail"]) == (404, "abc.com not found")
    response = call(f"{base}/a.example/mailboxes/nobody/{path}", {"filterlevel": "on"})
    expected = (
        "Mailbox not found"
        if (method, path) == ("get", "spam/settings")
        else "No user with the email address nobody@a.example exists"
    )
    assert (response.status_code, response.json()["detail"]) == (404, expected)
