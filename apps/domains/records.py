"""The DNS records a domain needs: pure functions, the single source for the API, the
console and the DNS verification."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TypedDict

from apps.domains.dkim import txt_record

VERIFICATION_LABEL = "_mailadmin-verification"
VERIFICATION_PREFIX = "mailadmin-verification="

# (service label, port, purpose); port 0 is RFC 2782's "not offered here" (target ".").
SRV_SERVICES = (
    ("_submission._tcp", 587, "Mail submission (SMTP with STARTTLS)"),
    ("_submissions._tcp", 465, "Mail submission (SMTP over TLS)"),
    ("_imap._tcp", 143, "IMAP with STARTTLS"),
    ("_imaps._tcp", 993, "IMAP over TLS"),
    ("_pop3._tcp", 110, "POP3 with STARTTLS"),
    ("_pop3s._tcp", 995, "POP3 over TLS"),
    ("_jmap._tcp", 443, "JMAP (RFC 8620) over HTTPS"),
    ("_caldav._tcp", 0, "Calendars without TLS: not offered, clients use CalDAV over TLS"),
    ("_caldavs._tcp", 443, "Calendars (CalDAV over TLS)"),
    ("_carddav._tcp", 0, "Contacts without TLS: not offered, clients use CardDAV over TLS"),
    ("_carddavs._tcp", 443, "Contacts (CardDAV over TLS)"),
    ("_autodiscover._tcp", 443, "Automatic mail client configuration (Outlook, by SRV)"),
)
# Default local parts of the report addresses on each hosted domain (settings override).
DMARC_REPORT_LOCAL = "dmarc-reports"
TLSRPT_REPORT_LOCAL = "tls-reports"
MTA_STS_MODES = ("enforce", "testing", "none")
MTA_STS_MAX_AGE = 7 * 86400


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


def mta_sts_policy(
    *, mx_hosts: Sequence[str], mode: str = "testing", max_age: int = MTA_STS_MAX_AGE
) -> str:
    """The MTA-STS policy (RFC 8461 3.2) served at https://mta-sts.<domain>/.well-known/
    mta-sts.txt: CRLF-terminated key: value lines, one mx line per MX host."""
    if mode not in MTA_STS_MODES:
        raise ValueError(f"MTA-STS mode must be one of {', '.join(MTA_STS_MODES)}")
    lines = ["version: STSv1", f"mode: {mode}"]
    lines += [f"mx: {host.rstrip('.')}" for host in mx_hosts]
    lines.append(f"max_age: {max_age}")
    return "".join(f"{line}\r\n" for line in lines)


def mta_sts_id(policy: str) -> str:
    """The id= of the _mta-sts TXT record: a digest of the policy, so it changes exactly
    when the policy does (senders refetch a cached policy only when the id changes)."""
    return hashlib.sha256(policy.encode("utf-8")).hexdigest()[:20]


def report_address(local: str, domain: str) -> str:
    return f"{local}@{domain}"


def _dkim_purpose(key) -> str:
    state = getattr(key, "state", "active")
    if state == "pending":
        return "DKIM: a new key; it signs once this record is found in DNS."
    if state == "retiring":
        return "DKIM: a retiring key, published until mail it signed has been delivered."
    return "DKIM: the public key that verifies signatures of its mail."


def domain_records(
    *,
    domain: str,
    hostname: str,
    verification_token: str,
    dkim_keys: Iterable = (),
    dmarc_report_local: str = DMARC_REPORT_LOCAL,
    tlsrpt_report_local: str = TLSRPT_REPORT_LOCAL,
    mta_sts_mode: str = "testing",
    mta_sts_max_age: int = MTA_STS_MAX_AGE,
    tlsa_sha256: str | None = None,
) -> list[Record]:
    """Every record `domain` (punycode) should publish, required ones first.

    `dkim_keys` are the published keys: objects with selector, algorithm, public_key and
    state (only the active key is required; pending and retiring ones are optional).
    DMARC and TLS-RPT reports go to addresses on the domain itself, which this server
    receives and ingests. `tlsa_sha256` (hex SHA-256 of the certificate's public key)
    adds a DANE TLSA record for the MX host, which lives in the MX host's zone.
    """
    host = _fqdn(hostname)
    dmarc_reports = f"mailto:{report_address(dmarc_report_local, domain)}"
    tls_reports = f"mailto:{report_address(tlsrpt_report_local, domain)}"
    policy = mta_sts_policy(mx_hosts=[hostname], mode=mta_sts_mode, max_age=mta_sts_max_age)
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
            getattr(key, "state", "active") == "active",
            _dkim_purpose(key),
        )
        for key in dkim_keys
    ]
    records += [
        _record(
            "TXT",
            f"_dmarc.{domain}",
            f"v=DMARC1; p=quarantine; rua={dmarc_reports}; ruf={dmarc_reports}",
            True,
            "DMARC: what receivers do with mail failing SPF and DKIM; their reports come "
            "back here (Reports).",
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
            f"v=TLSRPTv1; rua={tls_reports}",
            False,
            "TLS-RPT: senders report TLS failures back here (Reports).",
        ),
        _record(
            "TXT",
            f"_mta-sts.{domain}",
            f"v=STSv1; id={mta_sts_id(policy)}",
            False,
            "MTA-STS: senders must use TLS to this server; the id changes with the policy.",
        ),
        _record(
            "CNAME",
            f"mta-sts.{domain}",
            host,
            False,
            "MTA-STS: the host that serves the policy (/.well-known/mta-sts.txt).",
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
        _record(
            "SRV",
            f"{service}.{domain}",
            f"0 1 {port} {host}" if port else "0 0 0 .",
            False,
            purpose,
        )
        for service, port, purpose in SRV_SERVICES
    ]
    if tlsa_sha256:
        records.append(
            _record(
                "TLSA",
                f"_25._tcp.{hostname}",
                f"3 1 1 {tlsa_sha256.lower()}",
                False,
                f"DANE: the key of this server's certificate (in the zone of {host}).",
            )
        )
    return records


# What an alias name publishes for SPF: nothing is ever sent from it (see alias_records).
SPF_SENDS_NOTHING = "v=spf1 -all"


def alias_records(*, alias: str, domain: str, hostname: str) -> list[Record]:
    """What a domain alias `alias` (punycode) of `domain` must publish, required ones first.

    An alias only receives: mail to x@<alias> is delivered as to x@<domain>. Nothing here
    ever sends from it: submission accepts only a sender's own addresses, which are on
    registered domains (never an alias name); forwards are SRS-rewritten into the domain
    itself; DSNs use the null sender. So the alias's SPF and DMARC say that it sends no
    mail (an SPF record of "-all" alone, RFC 7208; M3AAWG's Protecting Parked Domains),
    which makes forged mail "from" it fail everywhere, instead of copying the domain's.
    """
    host = _fqdn(hostname)
    return [
        _record(
            "MX",
            alias,
            f"10 {host}",
            True,
            f"Directs mail for the alias to this server, which delivers it as mail to {domain}.",
        ),
        _record(
            "TXT",
            alias,
            SPF_SENDS_NOTHING,
            True,
            "SPF: the alias sends no mail, so no server may send as it.",
        ),
        _record(
            "TXT",
            f"_dmarc.{alias}",
            "v=DMARC1; p=reject",
            False,
            "DMARC: receivers reject mail claiming to be from the alias (it sends none).",
        ),
    ]
