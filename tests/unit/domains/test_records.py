"""The DNS records a domain needs, exactly as published."""

from __future__ import annotations

from types import SimpleNamespace

from apps.domains.records import domain_records, mta_sts_id, mta_sts_policy


def _rows(**kwargs):
    return [(r["type"], r["name"], r["content"], r["required"]) for r in domain_records(**kwargs)]


def test_it_lists_every_record_with_exact_names_and_contents():
    keys = [
        SimpleNamespace(
            selector="202611e", algorithm="ed25519", public_key="PUBE=", state="active"
        ),
        SimpleNamespace(
            selector="202612e", algorithm="ed25519", public_key="NEW=", state="pending"
        ),
        SimpleNamespace(selector="202611r", algorithm="rsa", public_key="PUBR=", state="retiring"),
    ]
    rows = _rows(domain="a.example", hostname="mx.test", verification_token="tok", dkim_keys=keys)
    sts_id = mta_sts_id(mta_sts_policy(mx_hosts=["mx.test"]))
    assert rows == [
        ("MX", "a.example.", "10 mx.test.", True),
        ("TXT", "a.example.", "v=spf1 mx -all", True),
        ("TXT", "202611e._domainkey.a.example.", "v=DKIM1; k=ed25519; h=sha256; p=PUBE=", True),
        ("TXT", "202612e._domainkey.a.example.", "v=DKIM1; k=ed25519; h=sha256; p=NEW=", False),
        ("TXT", "202611r._domainkey.a.example.", "v=DKIM1; k=rsa; h=sha256; p=PUBR=", False),
        (
            "TXT",
            "_dmarc.a.example.",
            "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@a.example; "
            "ruf=mailto:dmarc-reports@a.example",
            True,
        ),
        ("TXT", "_mailadmin-verification.a.example.", "mailadmin-verification=tok", True),
        ("TXT", "_smtp._tls.a.example.", "v=TLSRPTv1; rua=mailto:tls-reports@a.example", False),
        ("TXT", "_mta-sts.a.example.", f"v=STSv1; id={sts_id}", False),
        ("CNAME", "mta-sts.a.example.", "mx.test.", False),
        ("CNAME", "autoconfig.a.example.", "mx.test.", False),
        ("CNAME", "autodiscover.a.example.", "mx.test.", False),
        ("SRV", "_submission._tcp.a.example.", "0 1 587 mx.test.", False),
        ("SRV", "_submissions._tcp.a.example.", "0 1 465 mx.test.", False),
        ("SRV", "_imap._tcp.a.example.", "0 1 143 mx.test.", False),
        ("SRV", "_imaps._tcp.a.example.", "0 1 993 mx.test.", False),
        ("SRV", "_pop3._tcp.a.example.", "0 1 110 mx.test.", False),
        ("SRV", "_pop3s._tcp.a.example.", "0 1 995 mx.test.", False),
        ("SRV", "_jmap._tcp.a.example.", "0 1 443 mx.test.", False),
        ("SRV", "_caldav._tcp.a.example.", "0 0 0 .", False),
        ("SRV", "_caldavs._tcp.a.example.", "0 1 443 mx.test.", False),
        ("SRV", "_carddav._tcp.a.example.", "0 0 0 .", False),
        ("SRV", "_carddavs._tcp.a.example.", "0 1 443 mx.test.", False),
        ("SRV", "_autodiscover._tcp.a.example.", "0 1 443 mx.test.", False),
    ]


def test_it_takes_report_addresses_and_the_mta_sts_mode_from_its_options():
    records = domain_records(
        domain="a.example",
        hostname="mx.test",
        verification_token="t",
        dmarc_report_local="rua",
        tlsrpt_report_local="tls",
        mta_sts_mode="enforce",
        mta_sts_max_age=86400,
    )
    by_name = {(r["type"], r["name"]): r["content"] for r in records}
    assert by_name[("TXT", "_dmarc.a.example.")] == (
        "v=DMARC1; p=quarantine; rua=mailto:rua@a.example; ruf=mailto:rua@a.example"
    )
    assert by_name[("TXT", "_smtp._tls.a.example.")] == "v=TLSRPTv1; rua=mailto:tls@a.example"
    enforce = mta_sts_policy(mx_hosts=["mx.test"], mode="enforce", max_age=86400)
    assert by_name[("TXT", "_mta-sts.a.example.")] == f"v=STSv1; id={mta_sts_id(enforce)}"


def test_it_changes_the_mta_sts_id_exactly_when_the_policy_changes():
    policy = mta_sts_policy(mx_hosts=["mx.test."], mode="testing", max_age=604800)
    assert policy == "version: STSv1\r\nmode: testing\r\nmx: mx.test\r\nmax_age: 604800\r\n"
    assert mta_sts_id(policy) == mta_sts_id(mta_sts_policy(mx_hosts=["mx.test"]))
    others = {
        mta_sts_id(mta_sts_policy(mx_hosts=["mx.test"], mode="enforce")),
        mta_sts_id(mta_sts_policy(mx_hosts=["mx.test"], max_age=86400)),
        mta_sts_id(mta_sts_policy(mx_hosts=["mx2.test"])),
    }
    assert mta_sts_id(policy) not in others and len(others) == 3
    assert all(i.isalnum() and len(i) <= 32 for i in others)  # RFC 8461 3.1: 1*32 alphanum


def test_it_adds_a_tlsa_record_for_the_mx_host_when_a_certificate_is_known():
    records = domain_records(
        domain="a.example", hostname="mx.test", verification_token="t", tlsa_sha256="AB" * 32
    )
    assert (records[-1]["type"], records[-1]["name"], records[-1]["content"]) == (
        "TLSA",
        "_25._tcp.mx.test.",
        "3 1 1 " + "ab" * 32,
    )
    assert not [
        r
        for r in domain_records(domain="a.example", hostname="mx.test", verification_token="t")
        if r["type"] == "TLSA"
    ]


def test_it_gives_every_record_a_purpose_and_no_dkim_row_without_keys():
    records = domain_records(domain="a.example", hostname="mx.test.", verification_token="t")
    assert all(r["purpose"] for r in records)
    assert not [r for r in records if "_domainkey" in r["name"]]
    assert records[0]["content"] == "10 mx.test."  # a trailing dot is not doubled
