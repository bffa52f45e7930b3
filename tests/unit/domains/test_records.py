"""The DNS records a domain needs, exactly as published."""

from __future__ import annotations

from types import SimpleNamespace

from apps.domains.records import domain_records


def _rows(**kwargs):
    return [(r["type"], r["name"], r["content"], r["required"]) for r in domain_records(**kwargs)]


def test_it_lists_every_record_with_exact_names_and_contents():
    keys = [
        SimpleNamespace(selector="202611e", algorithm="ed25519", public_key="PUBE="),
        SimpleNamespace(selector="202611r", algorithm="rsa", public_key="PUBR="),
    ]
    rows = _rows(domain="a.example", hostname="mx.test", verification_token="tok", dkim_keys=keys)
    assert rows == [
        ("MX", "a.example.", "10 mx.test.", True),
        ("TXT", "a.example.", "v=spf1 mx -all", True),
        ("TXT", "202611e._domainkey.a.example.", "v=DKIM1; k=ed25519; h=sha256; p=PUBE=", True),
        ("TXT", "202611r._domainkey.a.example.", "v=DKIM1; k=rsa; h=sha256; p=PUBR=", True),
        (
            "TXT",
            "_dmarc.a.example.",
            "v=DMARC1; p=quarantine; rua=mailto:postmaster@a.example",
            True,
        ),
        ("TXT", "_mailadmin-verification.a.example.", "mailadmin-verification=tok", True),
        ("TXT", "_smtp._tls.a.example.", "v=TLSRPTv1; rua=mailto:postmaster@a.example", False),
        ("CNAME", "autoconfig.a.example.", "mx.test.", False),
        ("CNAME", "autodiscover.a.example.", "mx.test.", False),
        ("SRV", "_submission._tcp.a.example.", "0 1 587 mx.test.", False),
        ("SRV", "_submissions._tcp.a.example.", "0 1 465 mx.test.", False),
        ("SRV", "_imap._tcp.a.example.", "0 1 143 mx.test.", False),
        ("SRV", "_imaps._tcp.a.example.", "0 1 993 mx.test.", False),
        ("SRV", "_pop3._tcp.a.example.", "0 1 110 mx.test.", False),
        ("SRV", "_pop3s._tcp.a.example.", "0 1 995 mx.test.", False),
        ("SRV", "_caldavs._tcp.a.example.", "0 1 443 mx.test.", False),
        ("SRV", "_carddavs._tcp.a.example.", "0 1 443 mx.test.", False),
    ]


def test_it_gives_every_record_a_purpose_and_no_dkim_row_without_keys():
    records = domain_records(domain="a.example", hostname="mx.test.", verification_token="t")
    assert all(r["purpose"] for r in records)
    assert not [r for r in records if "_domainkey" in r["name"]]
    assert records[0]["content"] == "10 mx.test."  # a trailing dot is not doubled
