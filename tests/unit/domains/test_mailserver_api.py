"""GET /api/mailserver/server (tenant-mailserver-api.txt): the spec's fields in JSON and
XML, IsVerified from the stored DNS check results, per tenant, isolated."""

from __future__ import annotations

import pytest
from defusedxml import ElementTree

from apps.domains import selectors, services
from apps.domains.dkim import txt_record
from apps.domains.models import DkimKey, DnsCheckResult

NOT_FOUND_DETAIL = "The requested resource does not exist on this server."


def _store_results(domain, *, ok_types: set[str]) -> None:
    """What a DNS check would have stored: the records of `ok_types` found, others missing."""
    DnsCheckResult.objects.bulk_create(
        DnsCheckResult(
            domain=domain,
            tenant_id=domain.tenant_id,
            record_type=record["type"],
            name=record["name"],
            expected=record["content"],
            status="ok" if _kind(record) in ok_types else "missing",
        )
        for record in selectors.expected_records(domain=domain)
    )


def _kind(record) -> str:
    if record["type"] == "MX":
        return "mx"
    if record["content"].startswith("v=spf1"):
        return "spf"
    if "._domainkey." in record["name"]:
        return "dkim"
    if record["name"].startswith("_mailadmin-verification."):
        return "proof"
    return "other"


@pytest.fixture
def dkim_key(admin_a, domain_a):
    return services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="ed25519")


def test_it_shows_the_tenants_server_with_real_verification(
    api_a, tenant_a, domain_a, dkim_key, settings
):
    settings.MAILADMIN_HOSTNAME = "mx.host.example"
    tenant_a.max_mailboxes_per_user = 5
    tenant_a.save()
    _store_results(domain_a, ok_types={"mx", "dkim"})
    response = api_a.get("/api/mailserver/server")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    token = selectors.verification_token(domain_a)
    assert data["Id"] == tenant_a.pk
    assert data["Dns"] == {
        "Id": domain_a.pk,
        "MxRecord": {"Host": "mx.host.example", "Priority": 10, "IsVerified": True},
        "SpfRecord": {"Name": "a.example", "Value": "v=spf1 mx -all", "IsVerified": False},
        "DkimRecord": {
            "Selector": dkim_key.selector,
            "PublicKey": txt_record("ed25519", dkim_key.public_key),
            "IsVerified": True,
        },
        "DomainCheckRecord": {
            "Name": "_mailadmin-verification.a.example",
            "Value": f"mailadmin-verification={token}",
            "IsVerified": False,
        },
    }
    assert data["ServerLimits"] == {"MailboxMaxCountPerUser": 5}
    assert data["InServer"] == {
        "Id": 1,
        "ProviderId": 0,
        "Type": "imap",
        "Hostname": "mx.host.example",
        "Port": 993,
        "SocketType": "SSL",
        "Username": "%EMAILADDRESS%",
        "Authentication": "password-cleartext",
        "IsUserData": False,
    }
    assert (data["OutServer"]["Type"], data["OutServer"]["Port"]) == ("smtp", 465)


def test_it_is_not_verified_when_the_expected_value_changed_since(api_a, domain_a, dkim_key):
    _store_results(domain_a, ok_types={"mx", "spf", "dkim", "proof"})
    DnsCheckResult.objects.filter(name__contains="._domainkey.").update(expected="v=DKIM1; p=old")
    dns = api_a.get("/api/mailserver/server").json()["data"]["Dns"]
    assert dns["DkimRecord"]["IsVerified"] is False
    assert dns["SpfRecord"]["IsVerified"] is True
    assert dns["DomainCheckRecord"]["IsVerified"] is True


def test_it_answers_in_xml_with_the_spec_names(api_a, domain_a, dkim_key):
    _store_results(domain_a, ok_types={"spf"})
    response = api_a.get("/api/mailserver/server", HTTP_ACCEPT="text/xml")
    assert response.status_code == 200
    root = ElementTree.fromstring(response.content)
    server = root.find("data")
    assert server.find("Dns/SpfRecord/IsVerified").text == "true"
    assert server.find("Dns/MxRecord/IsVerified").text == "false"
    assert server.find("Dns/DkimRecord/Selector").text == dkim_key.selector
    assert server.find("InServer/Port").text == "993"
    assert server.find("ServerLimits/MailboxMaxCountPerUser").text is None


def test_it_has_an_empty_dns_part_before_the_first_domain(api_a, tenant_a):
    dns = api_a.get("/api/mailserver/server").json()["data"]["Dns"]
    assert dns["Id"] is None
    assert dns["SpfRecord"] == {"Name": "", "Value": "", "IsVerified": False}


def test_it_shows_a_named_domain_of_the_tenant_only(
    api_a, domain_a, make_domain, tenant_a, domain_b
):
    second = make_domain("xn--bcher-kva.example", tenant=tenant_a)
    dns = api_a.get("/api/mailserver/server", {"domain": "bücher.example"}).json()["data"]["Dns"]
    assert dns["Id"] == second.pk
    response = api_a.get("/api/mailserver/server", {"domain": domain_b.pk})
    assert (response.status_code, response.json()["detail"]) == (404, NOT_FOUND_DETAIL)


def test_it_keeps_a_tenant_admin_to_their_tenant(api_a, api_b, tenant_a, tenant_b, domain_a):
    assert api_a.get("/api/mailserver/server", {"tenant": "tenant-a"}).status_code == 200
    for tenant in ("tenant-b", str(tenant_b.pk)):
        response = api_a.get("/api/mailserver/server", {"tenant": tenant})
        assert (response.status_code, response.json()["detail"]) == (404, NOT_FOUND_DETAIL)
    assert api_b.get("/api/mailserver/server").json()["data"]["Dns"]["Id"] is None


def test_a_superadmin_picks_the_tenant(api_root, tenant_b, domain_b):
    response = api_root.get("/api/mailserver/server")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "tenant", "message": "Missing required field: tenant"}
    ]
    for key in ("tenant-b", str(tenant_b.pk)):
        data = api_root.get("/api/mailserver/server", {"tenant": key}).json()["data"]
        assert (data["Id"], data["Dns"]["Id"]) == (tenant_b.pk, domain_b.pk)
    assert api_root.get("/api/mailserver/server", {"tenant": "nope"}).status_code == 404


def test_it_needs_dns_record_get(api_client_for, make_principal, tenant_a):
    reader = make_principal(tenant=tenant_a, roles=(), enabled_permissions=["domain-get"])
    response = api_client_for(reader).get("/api/mailserver/server")
    assert (response.status_code, response.json()["permission"]) == (403, "dns-record-get")


def test_it_costs_a_fixed_number_of_queries(
    api_a, domain_a, dkim_key, django_assert_max_num_queries
):
    _store_results(domain_a, ok_types={"mx"})
    with django_assert_max_num_queries(8):
        assert api_a.get("/api/mailserver/server").status_code == 200


def test_it_shows_the_signing_keys_record_during_a_rotation(api_a, admin_a, domain_a, dkim_key):
    DkimKey.objects.filter(pk=dkim_key.pk).update(state="retiring")
    active = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    DkimKey.objects.filter(pk=active.pk).update(state="active")
    services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="ed25519")  # pending
    shown = api_a.get("/api/mailserver/server").json()["data"]["Dns"]["DkimRecord"]
    assert shown["Selector"] == active.selector
