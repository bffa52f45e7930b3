"""Mail client autoconfiguration: Thunderbird's autoconfig file and Outlook's autodiscover,
public, for hosted domains only, bounded, parsed safely."""

from __future__ import annotations

import pytest
from defusedxml import ElementTree

from apps.domains.clientconfig import (
    AUTODISCOVER_REQUEST_NS,
    AUTODISCOVER_RESPONSE_NS,
    MAX_AUTODISCOVER_BODY,
    OUTLOOK_RESPONSE_NS,
)

pytestmark = pytest.mark.django_db

R = f"{{{AUTODISCOVER_RESPONSE_NS}}}"
O = f"{{{OUTLOOK_RESPONSE_NS}}}"  # noqa: E741


def _request(address: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>'
        f'<Autodiscover xmlns="{AUTODISCOVER_REQUEST_NS}"><Request>'
        f"<EMailAddress>{address}</EMailAddress>"
        "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/"
        "outlook/responseschema/2006a</AcceptableResponseSchema>"
        "</Request></Autodiscover>"
    ).encode()


def _post(client, body: bytes, path: str = "/autodiscover/autodiscover.xml", **extra):
    return client.post(path, body, content_type="text/xml", **extra)


# --- Thunderbird ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"]
)
def test_it_serves_thunderbird_autoconfig_for_a_hosted_domain(
    client, domain_a, settings, path, django_assert_num_queries
):
    settings.MAILADMIN_HOSTNAME = "mx.host.example"
    with django_assert_num_queries(1):
        response = client.get(path, {"emailaddress": "Jane@A.example"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    root = ElementTree.fromstring(response.content)
    assert (root.tag, root.get("version")) == ("clientConfig", "1.1")
    provider = root.find("emailProvider")
    assert provider.get("id") == "a.example"
    assert provider.findtext("domain") == "a.example"
    servers = [
        (s.tag, s.get("type"), s.findtext("hostname"), s.findtext("port"), s.findtext("socketType"))
        for s in provider
        if s.tag.endswith("Server")
    ]
    assert servers == [
        ("incomingServer", "imap", "mx.host.example", "993", "SSL"),
        ("incomingServer", "pop3", "mx.host.example", "995", "SSL"),
        ("outgoingServer", "smtp", "mx.host.example", "465", "SSL"),
        ("outgoingServer", "smtp", "mx.host.example", "587", "STARTTLS"),
    ]
    assert {s.findtext("username") for s in provider.iter("incomingServer")} == {"%EMAILADDRESS%"}
    assert b"jane" not in response.content.lower()


def test_it_answers_for_an_idn_domain_given_in_unicode(client, make_domain, tenant_a):
    make_domain("xn--bcher-kva.example", tenant=tenant_a)
    response = client.get("/mail/config-v1.1.xml", {"emailaddress": "info@bücher.example"})
    assert response.status_code == 200
    root = ElementTree.fromstring(response.content)
    assert root.find("emailProvider/displayShortName").text == "bücher.example"


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({}, 400, "The emailaddress parameter is required."),
        ({"emailaddress": "not-an-address"}, 400, "'not-an-address' is not a valid email address."),
        ({"emailaddress": "jane@unknown.example"}, 404, "No mail configuration for this domain."),
    ],
)
def test_it_refuses_what_it_cannot_answer(client, domain_a, query, status, message):
    response = client.get("/mail/config-v1.1.xml", query)
    assert response.status_code == status
    assert response.content.decode() == message + "\n"


def test_it_only_answers_get_for_autoconfig(client, domain_a):
    assert client.post("/mail/config-v1.1.xml?emailaddress=a@a.example").status_code == 405


# --- Outlook ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"]
)
def test_it_answers_outlook_autodiscover_for_a_hosted_domain(
    client, domain_a, settings, path, django_assert_num_queries
):
    settings.MAILADMIN_HOSTNAME = "mx.host.example"
    with django_assert_num_queries(1):
        response = _post(client, _request("Jane@a.example"), path)
    assert response.status_code == 200, response.content
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{R}Autodiscover"
    account = root.find(f"{O}Response/{O}Account")
    assert account.findtext(f"{O}Action") == "settings"
    protocols = {
        p.findtext(f"{O}Type"): (
            p.findtext(f"{O}Server"),
            p.findtext(f"{O}Port"),
            p.findtext(f"{O}SSL"),
            p.findtext(f"{O}LoginName"),
        )
        for p in account.findall(f"{O}Protocol")
    }
    assert protocols == {
        "IMAP": ("mx.host.example", "993", "on", "jane@a.example"),
        "POP3": ("mx.host.example", "995", "on", "jane@a.example"),
        "SMTP": ("mx.host.example", "465", "on", "jane@a.example"),
    }


def test_it_accepts_a_request_without_the_namespace(client, domain_a):
    body = (
        b"<Autodiscover><Request><EMailAddress>x@a.example</EMailAddress></Request></Autodiscover>"
    )
    assert _post(client, body).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (_request("x@unknown.example"), 404, "No mail configuration for this domain."),
        (b"<Autodiscover><Request>", 400, "The request is not well-formed XML."),
        (b"<Autodiscover/>", 400, "The request has no Request/EMailAddress."),
        (  # expat's LookupError was a 500 on this public page
            b'<?xml version="1.0" encoding="no-such-charset"?><Autodiscover/>',
            400,
            "The request declares an unknown encoding.",
        ),
        (_request("nobody"), 400, "'nobody' is not a valid email address."),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "x@a.example">]>'
            b"<Autodiscover><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>",
            400,
            "The request must not contain a DTD or entities.",
        ),
        (
            b"<Autodiscover><Request><EMailAddress>x@a.example</EMailAddress></Request>"
            + b"<Pad>"
            + b"x" * MAX_AUTODISCOVER_BODY
            + b"</Pad></Autodiscover>",
            413,
            f"The request is larger than {MAX_AUTODISCOVER_BODY} bytes.",
        ),
    ],
)
def test_it_refuses_bad_autodiscover_requests(client, domain_a, body, status, message):
    response = _post(client, body)
    assert response.status_code == status
    assert response.content.decode() == message + "\n"


def test_it_refuses_a_large_body_by_its_declared_length_without_reading_it(client, domain_a):
    response = _post(client, b"<x/>", CONTENT_LENGTH=str(MAX_AUTODISCOVER_BODY + 1))
    assert response.status_code == 413


def test_it_needs_no_login_nor_csrf_token(domain_a):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert _post(strict, _request("x@a.example")).status_code == 200
    assert strict.get("/autodiscover/autodiscover.xml").status_code == 405
