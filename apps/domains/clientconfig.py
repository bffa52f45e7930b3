"""How mail clients reach this server: one description of the endpoints, shown as the domain
URLs of the domains API, the tenant mail server record, Thunderbird's autoconfig file and
Outlook's autodiscover answer. Pure functions (no database): the views pick the domain.

The ports are the TLS services the domain's SRV records announce (records.SRV_SERVICES),
so a client configured here and one that follows DNS end up at the same place.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import StringIO
from xml.sax.saxutils import XMLGenerator

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from django.conf import settings

from apps.accounts.emails import InvalidAddress, normalize_address

# The largest autodiscover request we read: a real one is a few hundred bytes.
MAX_AUTODISCOVER_BODY = 8 * 1024
AUTODISCOVER_REQUEST_NS = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
)
AUTODISCOVER_RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_RESPONSE_NS = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)


@dataclass(frozen=True)
class Endpoint:
    protocol: str  # imap, pop3, smtp
    scheme: str  # of the URL
    port: int
    socket_type: str  # Thunderbird's words: SSL (implicit TLS) or STARTTLS


IMAP = Endpoint("imap", "imaps", 993, "SSL")
POP3 = Endpoint("pop3", "pop3s", 995, "SSL")
SMTP = Endpoint("smtp", "smtps", 465, "SSL")
SUBMISSION = Endpoint("smtp", "smtp", 587, "STARTTLS")


def mail_host() -> str:
    """The name clients connect to: the one the MX and SRV records point at."""
    return settings.MAILADMIN_HOSTNAME.rstrip(".")


def url(endpoint: Endpoint) -> str:
    return f"{endpoint.scheme}://{mail_host()}:{endpoint.port}"


def webmail_url() -> str:
    return f"https://{mail_host()}/"


class BadRequest(ValueError):
    """A client request we can't answer: the message says why, for the client's log."""


def address_domain(raw: str) -> tuple[str, str]:
    """(normalized address, its punycode domain) of a client-supplied address."""
    try:
        address = normalize_address(raw)
    except InvalidAddress:
        raise BadRequest(f"'{raw[:320]}' is not a valid email address.") from None
    return address, address.rpartition("@")[2]


# --- Thunderbird autoconfig ---------------------------------------------------------------


def _element(xml: XMLGenerator, tag: str, text: str, attrs: dict[str, str] | None = None) -> None:
    xml.startElement(tag, attrs or {})
    xml.characters(text)
    xml.endElement(tag)


def thunderbird_config(*, domain: str, display_domain: str) -> bytes:
    """The clientConfig 1.1 document for `domain` (punycode): IMAP and POP3 over TLS,
    submission over TLS and with STARTTLS, the whole address as the login name."""
    stream = StringIO()
    xml = XMLGenerator(stream, "utf-8")
    xml.startDocument()
    xml.startElement("clientConfig", {"version": "1.1"})
    xml.startElement("emailProvider", {"id": domain})
    _element(xml, "domain", domain)
    _element(xml, "displayName", f"{display_domain} mail")
    _element(xml, "displayShortName", display_domain)
    for tag, endpoint in (
        ("incomingServer", IMAP),
        ("incomingServer", POP3),
        ("outgoingServer", SMTP),
        ("outgoingServer", SUBMISSION),
    ):
        xml.startElement(tag, {"type": endpoint.protocol})
        _element(xml, "hostname", mail_host())
        _element(xml, "port", str(endpoint.port))
        _element(xml, "socketType", endpoint.socket_type)
        _element(xml, "authentication", "password-cleartext")
        _element(xml, "username", "%EMAILADDRESS%")
        xml.endElement(tag)
    xml.endElement("emailProvider")
    xml.endElement("clientConfig")
    xml.endDocument()
    return stream.getvalue().encode("utf-8")


# --- Outlook autodiscover -----------------------------------------------------------------


def autodiscover_address(body: bytes) -> str:
    """The EMailAddress of an Outlook autodiscover request (parsed by defusedxml: no DTDs,
    no entities), or BadRequest saying what is wrong with it."""
    try:
        root = ElementTree.fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise BadRequest("The request must not contain a DTD or entities.") from None
    except ElementTree.ParseError:
        raise BadRequest("The request is not well-formed XML.") from None
    except LookupError:  # expat asks Python's codecs for the declared encoding
        raise BadRequest("The request declares an unknown encoding.") from None
    found = root.find(
        f"{{{AUTODISCOVER_REQUEST_NS}}}Request/{{{AUTODISCOVER_REQUEST_NS}}}EMailAddress"
    )
    if found is None:
        found = root.find("Request/EMailAddress")  # some clients omit the namespace
    if found is None or not (found.text or "").strip():
        raise BadRequest("The request has no Request/EMailAddress.")
    return found.text.strip()


def autodiscover_response(*, address: str, display_domain: str) -> bytes:
    """The Outlook (2006a) answer: IMAP and SMTP over TLS, logging in with the address the
    client sent (nothing else about the account is said)."""
    stream = StringIO()
    xml = XMLGenerator(stream, "utf-8")
    xml.startDocument()
    xml.startElement("Autodiscover", {"xmlns": AUTODISCOVER_RESPONSE_NS})
    xml.startElement("Response", {"xmlns": OUTLOOK_RESPONSE_NS})
    xml.startElement("User", {})
    _element(xml, "DisplayName", f"{display_domain} mail")
    xml.endElement("User")
    xml.startElement("Account", {})
    _element(xml, "AccountType", "email")
    _element(xml, "Action", "settings")
    for protocol, endpoint in (("IMAP", IMAP), ("POP3", POP3), ("SMTP", SMTP)):
        xml.startElement("Protocol", {})
        _element(xml, "Type", protocol)
        _element(xml, "Server", mail_host())
        _element(xml, "Port", str(endpoint.port))
        _element(xml, "DomainRequired", "off")
        _element(xml, "LoginName", address)
        _element(xml, "SPA", "off")
        _element(xml, "SSL", "on")
        _element(xml, "AuthRequired", "on")
        xml.endElement("Protocol")
    xml.endElement("Account")
    xml.endElement("Response")
    xml.endElement("Autodiscover")
    xml.endDocument()
    return stream.getvalue().encode("utf-8")
