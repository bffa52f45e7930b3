"""The DNS records a domain needs: pure functions, the single source for the API, the
console and the DNS verification."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

from apps.domains.dkim import txt_record

VERIFICATION_LABEL = "_mailadmin-verification"
VERIFICATION_PREFIX = "mailadmin-verification="

# (service label, port, purpose)
SRV_SERVICES = (
    ("_submission._tcp", 587, "Mail submission (SMTP with STARTTLS)"),
    ("_submissions._tcp", 465, "Mail submission (SMTP over TLS)"),
    ("_imap._tcp", 143, "IMAP with STARTTLS"),
    ("_imaps._tcp", 993, "IMAP over TLS"),
    ("_pop3._tcp", 110, "POP3 with STARTTLS"),
    ("_pop3s._tcp", 995, "POP3 over TLS"),
    ("_caldavs._tcp", 443, "Calendars (CalDAV over TLS)"),
    ("_carddavs._tcp", 443, "Contacts (CardDAV over TLS)"),
)


class Record(TypedDict):
    type: str
    name: str
    content: str
    required: bool
    purpose: str


def _fqdn(name: str) -> str:
    return name.rstrip(".") + "."


def _record(rtype: str, name: str, content: str, required: bool, purpose: str) -> Record:
    return {
        "type": rtype,
        "name": _fqdn(name),
        "content": content,
        "required": required,
        "purpose": purpose,
    }


def verification_name(domain: str) -> str:
    return _fqdn(f"{VERIFICATION_LABEL}.{domain}")


def verification_content(token: str) -> str:
    return f"{VERIFICATION_PREFIX}{token}"


def dkim_name(domain: str, selector: str) -> str:
    return _fqdn(f"{selector}._domainkey.{domain}")


def domain_records(
    *,
    domain: str,
    hostname: str,
    verification_token: str,
    dkim_keys: Iterable = (),
) -> list[Record]:
    """Every record `domain` (punycode) should publish, required ones first.

    `dkim_keys` are the active keys: objects with selector, algorithm and public_key.
    """
    host = _fqdn(hostname)
    postmaster = f"mailto:postmaster@{domain}"
    records = [
        _record("MX", domain, f"10 {host}", True, "Directs mail for the domain to this server."),
        _record(
            "TXT", domain, "v=spf1 mx -all", True, "SPF: the servers allowed to send its mail."
        ),
    ]
    records += [
        _record(
            "TXT",
            dkim_name(domain, key.selector),
            txt_record(key.algorithm, key.public_key),
            True,
            "DKIM: the public key that verifies signatures of its mail.",
        )
        for key in dkim_keys
    ]
    records += [
        _record(
            "TXT",
            f"_dmarc.{domain}",
            f"v=DMARC1; p=quarantine; rua={postmaster}",
            True,
            "DMARC: what receivers do with mail failing SPF and DKIM, and where they report.",
        ),
        _record(
            "TXT",
            verification_name(domain),
            verification_content(verification_token),
            True,
            "Proves that the domain's owner added it to this server.",
        ),
        _record(
            "TXT",
            f"_smtp._tls.{domain}",
            f"v=TLSRPTv1; rua={postmaster}",
            False,
            "TLS-RPT: where senders report TLS failures.",
        ),
        _record(
            "CNAME",
            f"autoconfig.{domain}",
            host,
            False,
            "Automatic mail client configuration (Thunderbird and others).",
        ),
        _record(
            "CNAME",
            f"autodiscover.{domain}",
            host,
            False,
            "Automatic mail client configuration (Outlook).",
        ),
    ]
    records += [
        _record("SRV", f"{service}.{domain}", f"0 1 {port} {host}", False, purpose)
        for service, port, purpose in SRV_SERVICES
    ]
    return records
