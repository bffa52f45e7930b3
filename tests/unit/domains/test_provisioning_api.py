"""The provisioning API beyond the spec's examples: what a mailbox holds, PUT changing only
what it names, JSON bodies, addresses, isolation between tenants, permissions, and a list
whose query count does not grow with its length."""

from __future__ import annotations

import pytest
from defusedxml import ElementTree

from apps.accounts.models import Principal, PrincipalEmail
from apps.domains import mailbox_services
from apps.domains.models import MailboxProfile
from mailadmin.core.models import AuditEvent

pytestmark = pytest.mark.django_db

GOOD = {"displayName": "Alex Smith", "password": "Secret123!@#", "size": "2048"}


def _url(tenant, domain="a.example", name=None, address=None) -> str:
    url = f"/api/customers/{tenant.pk}/domains/{domain}/mailboxes"
    if name is not None:
        url += f"/{name}"
    if address is not None:
        url += f"/emailaddresses/{address}"
    return url


@pytest.fixture
def alex(api_a, tenant_a, domain_a):
    response = api_a.post(_url(tenant_a, name="alex.smith"), GOOD)
    assert response.status_code == 200, response.content
    return MailboxProfile.objects.get(name="alex.smith")


def test_it_creates_a_mailbox_as_an_individual_principal(api_a, tenant_a, domain_a):
    fields = {
        **GOOD,
        "isHidden": "true",
        "firstName": "Alex",
        "lastName": "Smith",
        "company": "Example Ltd",
        "department": "Sales",
        "jobTitle": "Manager",
        "addressLine1": "1 Main St",
        "city": "Springfield",
        "state": "IL",
        "zip": "62701",
        "country": "US",
        "businessnumber": "1",
        "pagernumber": "2",
        "homenumber": "3",
        "mobilenumber": "4",
        "faxnumber": "5",
        "notes": "VIP",
        "emailForwardingAddress": "Alex@Elsewhere.Example",
        "enabled": "false",
    }
    response = api_a.post(_url(tenant_a, name="Alex.Smith"), fields)
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["name"] == "alex.smith"
    assert data["emailAddress"] == "alex.smith@a.example"
    assert data["emailAddresses"] == []
    assert data["size"] == 2048
    assert data["isHidden"] is True
    assert data["enabled"] is False
    assert data["emailForwardingAddress"] == "alex@elsewhere.example"
    assert data["mobilenumber"] == "4"
    assert "password" not in data
    principal = Principal.objects.get(name="alex.smith@a.example")
    assert principal.type == "individual"
    assert principal.tenant == tenant_a
    assert principal.is_active is False
    assert principal.quota == 2048 * 1024**2
    assert principal.description == "Alex Smith"
    assert [e.address for e in principal.emails.all()] == ["alex.smith@a.example"]
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"principal.create", "mailbox.create"} <= actions


def test_it_takes_a_json_body_with_json_types(api_a, tenant_a, domain_a):
    body = {"displayName": "Bo", "password": "Secret123!@#", "size": 10, "isHidden": True}
    response = api_a.post(_url(tenant_a, name="bo"), body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["data"]["isHidden"] is True
    response = api_a.put(_url(tenant_a, name="bo"), {"size": "big"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid format for size, input must be an integer"


def test_put_changes_only_the_fields_it_names(api_a, tenant_a, alex):
    response = api_a.put(_url(tenant_a, name="alex.smith"), {"homenumber": "8005551234"})
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["homenumber"] == "8005551234"
    assert data["displayName"] == "Alex Smith"
    assert data["size"] == 2048
    response = api_a.put(
        _url(tenant_a, name="alex.smith"),
        {"size": "4096", "displayName": "Alex S.", "enabled": "False", "password": "N3wSecret!!"},
    )
    assert response.status_code == 200, response.content
    principal = Principal.objects.get(name="alex.smith@a.example")
    assert principal.quota == 4096 * 1024**2
    assert principal.description == "Alex S."
    assert principal.is_active is False
    assert principal.check_password("N3wSecret!!")
    response = api_a.put(_url(tenant_a, name="alex.smith"), {"displayName": ""})
    assert response.json()["detail"] == "Required field displayName cannot be empty"


def test_forwarding_is_off_with_an_empty_address(api_a, tenant_a, alex):
    api_a.put(_url(tenant_a, name="alex.smith"), {"emailForwardingAddress": "x@y.example"})
    assert MailboxProfile.objects.get(pk=alex.pk).forwarding_address == "x@y.example"
    api_a.put(_url(tenant_a, name="alex.smith"), {"emailForwardingAddress": ""})
    assert MailboxProfile.objects.get(pk=alex.pk).forwarding_address == ""
    response = api_a.put(_url(tenant_a, name="alex.smith"), {"emailForwardingAddress": "abc"})
    assert response.status_code == 400
    assert response.json()["detail"] == "invalid email address: abc"


def test_it_adds_and_removes_extra_addresses(api_a, tenant_a, alex, make_principal):
    url = _url(tenant_a, name="alex.smith", address="Alex@A.Example")
    response = api_a.post(url)
    assert response.status_code == 200, response.content
    assert response.json()["data"]["emailAddresses"] == ["alex@a.example"]
    assert api_a.get(_url(tenant_a, name="alex.smith")).json()["data"]["emailAddresses"] == [
        "alex@a.example"
    ]
    # Not a domain of this tenant.
    response = api_a.post(_url(tenant_a, name="alex.smith", address="alex@b.example"))
    assert response.status_code == 400
    assert response.json()["detail"] == "The domain b.example is not a domain of this tenant."
    # The primary address stays; an address it does not have is not found.
    response = api_a.delete(_url(tenant_a, name="alex.smith", address="alex.smith@a.example"))
    assert response.status_code == 400
    response = api_a.delete(_url(tenant_a, name="alex.smith", address="nope@a.example"))
    assert response.status_code == 404
    response = api_a.delete(url)
    assert response.status_code == 200
    assert not PrincipalEmail.objects.filter(address="alex@a.example").exists()


def test_an_address_in_use_is_refused_with_the_spec_words(api_a, tenant_a, alex):
    api_a.post(_url(tenant_a, name="bob"), GOOD)
    response = api_a.post(_url(tenant_a, name="bob", address="alex.smith@a.example"))
    assert response.status_code == 400
    assert response.json()["detail"] == "The email address alex.smith@a.example is already in use"


def test_it_deletes_the_mailbox_and_its_principal(api_a, tenant_a, alex):
    response = api_a.delete(_url(tenant_a, name="alex.smith"))
    assert response.status_code == 200
    assert response.json() == {"data": None}
    assert not Principal.objects.filter(name="alex.smith@a.example").exists()
    assert api_a.get(_url(tenant_a, name="alex.smith")).json()["detail"] == "Mailbox not found"


def test_it_answers_in_xml(api_a, tenant_a, alex):
    response = api_a.get(_url(tenant_a, name="alex.smith"), HTTP_ACCEPT="application/xml")
    assert response.status_code == 200
    root = ElementTree.fromstring(response.content)
    assert root.findtext("data/displayName") == "Alex Smith"
    assert root.findtext("data/size") == "2048"
    assert root.findtext("data/enabled") == "true"
    response = api_a.get(_url(tenant_a) + "?format=xml")
    root = ElementTree.fromstring(response.content)
    assert [e.text for e in root.findall("data/items/item/name")] == ["alex.smith"]
    assert root.findtext("data/total") == "1"


def test_a_tenant_admin_cannot_reach_another_tenants_customer_path(
    api_a, api_b, tenant_a, tenant_b, alex, domain_b
):
    for method, url in [
        ("get", _url(tenant_a)),
        ("get", _url(tenant_a, name="alex.smith")),
        ("put", _url(tenant_a, name="alex.smith")),
        ("delete", _url(tenant_a, name="alex.smith")),
        ("post", _url(tenant_a, name="intruder")),
        ("post", _url(tenant_a, name="alex.smith", address="x@a.example")),
        ("delete", _url(tenant_a, name="alex.smith", address="alex.smith@a.example")),
    ]:
        response = getattr(api_b, method)(url, {"displayName": "X"})
        assert response.status_code == 404, (method, url)
        assert response.json()["detail"] == f"Customer {tenant_a.pk} not found"
    # Its own customer path with the other tenant's domain: not found either.
    response = api_b.get(_url(tenant_b, domain="a.example"))
    assert response.json()["detail"] == "a.example not found"
    assert MailboxProfile.objects.get(pk=alex.pk).principal.is_active
    assert not Principal.objects.filter(name__startswith="intruder").exists()


def test_a_superadmin_reaches_every_customer(api_root, tenant_a, alex):
    response = api_root.get(_url(tenant_a))
    assert response.status_code == 200
    response = api_root.post(_url(tenant_a, name="carol"), GOOD)
    assert response.status_code == 200, response.content
    assert Principal.objects.get(name="carol@a.example").tenant == tenant_a


@pytest.mark.parametrize(
    ("method", "permission"),
    [
        ("get", "principal-get"),
        ("put", "principal-update"),
        ("delete", "principal-delete"),
    ],
)
def test_it_needs_the_principal_permissions(
    method, permission, api_client_for, make_principal, tenant_a, alex
):
    user = make_principal(tenant=tenant_a, roles=["user"])
    response = getattr(api_client_for(user), method)(_url(tenant_a, name="alex.smith"))
    assert response.status_code == 403
    assert response.json()["permission"] == permission


def test_the_list_costs_a_fixed_number_of_queries(
    api_a, admin_a, tenant_a, domain_a, django_assert_max_num_queries
):
    values = {"display_name": "X", "password": "Secret123!@#", "size": 1}
    for index in range(3):
        mailbox_services.mailbox_create(
            actor=admin_a, domain=domain_a, name=f"u{index}", values=values
        )
    with django_assert_max_num_queries(9) as few:
        assert api_a.get(_url(tenant_a)).json()["data"]["total"] == 3
    for index in range(3, 30):
        mailbox_services.mailbox_create(
            actor=admin_a, domain=domain_a, name=f"u{index}", values=values
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = api_a.get(_url(tenant_a))
    assert response.json()["data"]["total"] == 30


def test_it_takes_an_xml_body(api_a, tenant_a, domain_a):
    body = (
        b"<mailbox><displayName>Xavier</displayName><password>Secret123!@#</password>"
        b"<size>20</size><isHidden>true</isHidden></mailbox>"
    )
    response = api_a.post(
        _url(tenant_a, name="xavier"), body, content_type="text/xml", HTTP_ACCEPT="text/xml"
    )
    assert response.status_code == 200, response.content
    root = ElementTree.fromstring(response.content)
    assert root.findtext("data/isHidden") == "true"
    assert root.findtext("data/size") == "20"
    response = api_a.put(
        _url(tenant_a, name="xavier"),
        b"<mailbox><extraStorage>1</extraStorage></mailbox>",
        content_type="application/xml",
        HTTP_ACCEPT="application/xml",
    )
    assert response.status_code == 400
    assert ElementTree.fromstring(response.content).findtext("detail") == (
        "Unrecognized field: extraStorage"
    )
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><mailbox><city>&a;</city></mailbox>'
    response = api_a.put(_url(tenant_a, name="xavier"), bomb, content_type="text/xml")
    assert response.status_code == 400
    assert response.json()["detail"] == "Malformed request body: XML entities are not allowed."


@pytest.mark.parametrize(
    ("body", "content_type", "detail"),
    [
        (b'<?xml version="1.0" encoding="no-such-charset"?><mailbox/>', "text/xml",
         "Malformed request body: the XML declares an unknown encoding."),
        (b'{"city": "\\ud800"}', "application/json",
         "Invalid value for field city: Surrogate characters are not allowed: U+D800."),
        (b'{"city": "a\\u0000b"}', "application/json",
         "Invalid value for field city: Null characters are not allowed."),
        (b"city=a%00b", "application/x-www-form-urlencoded",
         "Invalid value for city, null characters are not allowed"),
    ],
)  # fmt: skip
def test_it_names_what_no_column_can_hold(api_a, tenant_a, alex, body, content_type, detail):
    """Each was a 500: expat's LookupError, a surrogate UTF-8 cannot encode, and a NUL
    that PostgreSQL cannot store."""
    response = api_a.put(_url(tenant_a, name="alex.smith"), body, content_type=content_type)
    assert (response.status_code, response.json()["detail"]) == (400, detail)
    assert api_a.get(_url(tenant_a, name="alex.smith")).json()["data"]["city"] == ""
