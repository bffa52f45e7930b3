"""Sender authentication against the live DNS fixture: SPF results, DKIM and ARC vectors of
the shared corpus, DMARC alignment and policies, iprev, timeouts, and the header."""

from __future__ import annotations

import json
import time

import dkim
import pytest

from apps.spamfilter import auth, lookups
from apps.spamfilter.lookups import ScanLookups
from tests.conftest import corpus_file

IP = "192.0.2.10"


def _serve_vector(dns_server, name: str) -> bytes:
    """A mail-auth vector: `<name> <TXT>` lines, a blank line, the message (LF)."""
    records, message = corpus_file("dkim", "mail-auth", name).read_text().split("\n\n", 1)
    for line in records.splitlines():
        owner, value = line.split(" ", 1)
        dns_server.set_zone(owner, {"TXT": [value]})
    return message.replace("\r\n", "\n").replace("\n", "\r\n").encode()


@pytest.fixture
def vector_clock(monkeypatch):
    """The vectors carry old t=/x= values: verify at the time they were checked upstream."""

    class Clock:
        @staticmethod
        def time() -> float:
            return 1667843664.0

    monkeypatch.setattr(dkim, "time", Clock)


# --- SPF -----------------------------------------------------------------------------------

SPF_ZONES = {
    "pass.test": "v=spf1 ip4:192.0.2.0/24 -all",
    "fail.test": "v=spf1 ip4:198.51.100.1 -all",
    "softfail.test": "v=spf1 ~all",
    "neutral.test": "v=spf1 ?all",
    "permerror.test": "v=spf1 ip4:192.0.2.0/24 frobnicate -all",
    "include.test": "v=spf1 include:pass.test -all",
    "macro.test": "v=spf1 exists:%{i}.allow.macro.test -all",
}


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("pass.test", "pass"),
        ("fail.test", "fail"),
        ("softfail.test", "softfail"),
        ("neutral.test", "neutral"),
        ("none.test", "none"),
        ("permerror.test", "permerror"),
        ("broken.test", "temperror"),
        ("include.test", "pass"),
        ("macro.test", "pass"),
    ],
)
def test_it_gives_each_spf_result(dns_server, domain, expected):
    for name, record in SPF_ZONES.items():
        dns_server.set_zone(name, {"TXT": [record]})
    dns_server.set_zone("none.test", {"A": ["192.0.2.1"]})
    dns_server.set_zone("broken.test", "SERVFAIL")
    dns_server.set_zone(f"{IP}.allow.macro.test", {"A": ["127.0.0.2"]})
    result = auth.spf_check(
        ScanLookups(), ip=IP, sender=f"bounce@{domain}", helo="mx.sender.test", receiver="us"
    )
    assert (result.result, result.domain) == (expected, domain)


def test_it_checks_the_helo_identity_for_the_null_sender(dns_server):
    dns_server.set_zone("mx.pass.test", {"TXT": ["v=spf1 a -all"], "A": [IP]})
    result = auth.spf_check(ScanLookups(), ip=IP, sender="", helo="mx.pass.test", receiver="us")
    assert (result.result, result.domain) == ("pass", "mx.pass.test")


def test_it_stops_at_the_void_lookup_limit(dns_server):
    record = "v=spf1 " + " ".join(f"a:void{i}.test" for i in range(4)) + " -all"
    dns_server.set_zone("voids.test", {"TXT": [record]})
    result = auth.spf_check(ScanLookups(), ip=IP, sender="a@voids.test", helo="h", receiver="us")
    assert result.result == "permerror"
    assert "Void lookup limit" in result.explanation


def test_it_gives_temperror_within_the_deadline_when_dns_is_silent(dns_server):
    dns_server.set_zone("slow.test", "TIMEOUT")
    started = time.monotonic()
    result = auth.spf_check(
        ScanLookups(deadline=0.5), ip=IP, sender="a@slow.test", helo="h", receiver="us"
    )
    assert result.result == "temperror"
    assert time.monotonic() - started < 1.5


# --- DKIM and ARC: the corpus vectors --------------------------------------------------------


@pytest.mark.parametrize(
    ("vector", "expected"),
    [
        (
            "dkim-001.txt",
            [("pass", "football.example.com", "ed25519-sha256")] * 1
            + [("pass", "football.example.com", "rsa-sha256")],
        ),
        ("dkim-002.txt", [("pass", "example.com", "rsa-sha256")]),
        ("dkim-003.txt", [("pass", "ietf.org", "rsa-sha256")] * 2),
        ("dkim-004.txt", [("pass", "facebookmail.com", "rsa-sha256")]),
        ("dkim-005.txt", [("pass", "topicbox.com", "rsa-sha256")]),
        ("dkim-006.txt", [("pass", "github.com", "rsa-sha256")]),
    ],
)
def test_it_verifies_the_mail_auth_dkim_vectors(dns_server, vector_clock, vector, expected):
    message = _serve_vector(dns_server, vector)
    results = auth.dkim_check(ScanLookups(), message)
    assert [(r.result, r.domain, r.algorithm) for r in results] == expected


def test_it_fails_a_signature_once_the_body_changes(dns_server, vector_clock):
    message = _serve_vector(dns_server, "dkim-002.txt")
    results = auth.dkim_check(ScanLookups(), message + b"P.S. added on the way\r\n")
    assert [r.result for r in results] == ["fail"]


def test_it_gives_temperror_when_the_key_lookup_fails(dns_server, vector_clock):
    message = _serve_vector(dns_server, "dkim-002.txt")
    for name in list(dns_server.zones):
        dns_server.set_zone(name, "SERVFAIL")
    lookups.cache_clear()
    assert [r.result for r in auth.dkim_check(ScanLookups(), message)] == ["temperror"]


def test_it_gives_permerror_without_a_key(dns_server, vector_clock):
    message = _serve_vector(dns_server, "dkim-002.txt")
    dns_server.zones.clear()
    lookups.cache_clear()
    assert [r.result for r in auth.dkim_check(ScanLookups(), message)] == ["permerror"]


@pytest.fixture
def dkimpy_keys(dns_server):
    mapping = json.loads(corpus_file("dkim", "dkimpy", "dns-map.json").read_text())
    for name, value in mapping["records"].items():
        dns_server.set_zone(name, {"TXT": [value]})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ed25519test2.msg", [("pass", "ed25519-sha256")]),
        ("rfc6376.signed.msg", [("pass", "ed25519-sha256"), ("pass", "rsa-sha256")]),
        ("test2.message", [("pass", "rsa-sha256")]),
        ("rfc6376.signed.rsa.msg", [("pass", "rsa-sha256")]),
        ("rfc6376.signed.no_t.msg", [("fail", "rsa-sha256")]),
        ("test.message.baddomain", [("permerror", "rsa-sha256")]),
    ],
)
def test_it_verifies_the_dkimpy_vectors(dkimpy_keys, name, expected):
    message = corpus_file("dkim", "dkimpy", name).read_bytes()
    results = auth.dkim_check(ScanLookups(), message)
    assert [(r.result, r.algorithm) for r in results] == expected


def test_it_validates_the_google_arc_chain(dns_server):
    message = _serve_vector(dns_server, "arc-001.txt")
    result = auth.arc_check(ScanLookups(), message)
    assert (result.result, result.instances) == ("pass", 1)


def test_it_fails_the_ed25519_arc_chain_that_dkimpy_cannot_verify(dns_server):
    # mail-auth expects pass; dkimpy 1.1.8's ARC code refuses ed25519-sha256 seals.
    message = _serve_vector(dns_server, "arc-002.txt")
    result = auth.arc_check(ScanLookups(), message)
    assert result.result == "fail"
    assert "ed25519-sha256" in result.detail


def test_it_has_no_arc_result_for_an_unsealed_message(dns_server):
    assert auth.arc_check(ScanLookups(), b"From: a@b.test\r\n\r\nhi\r\n").result == "none"


# --- DMARC -----------------------------------------------------------------------------------


def _dmarc(lookups, *, from_domain, spf=("pass", "x.test"), dkim=()):
    return auth.dmarc_check(
        lookups,
        from_domain=from_domain,
        spf=auth.SpfResult(*spf),
        dkim_results=[auth.DkimResult(r, d) for r, d in dkim],
    )


def test_it_organises_domains_with_the_bundled_public_suffix_list():
    assert auth.organizational_domain("mail.example.co.uk") == "example.co.uk"
    assert auth.organizational_domain("a.b.example.com") == "example.com"
    assert auth.organizational_domain("co.uk") == "co.uk"


@pytest.mark.parametrize(
    ("record", "spf", "dkim", "expected"),
    [
        # relaxed (the default): a subdomain of the same organisational domain aligns
        ("v=DMARC1; p=reject", ("pass", "bounce.example.co.uk"), (), ("pass", "none")),
        (
            "v=DMARC1; p=reject",
            ("fail", "example.co.uk"),
            [("pass", "mail.example.co.uk")],
            ("pass", "none"),
        ),
        # strict: only the exact From domain aligns
        ("v=DMARC1; p=reject; aspf=s", ("pass", "bounce.example.co.uk"), (), ("fail", "reject")),
        (
            "v=DMARC1; p=quarantine; adkim=s",
            ("none", ""),
            [("pass", "mail.example.co.uk")],
            ("fail", "quarantine"),
        ),
        (
            "v=DMARC1; p=reject; adkim=s",
            ("none", ""),
            [("pass", "example.co.uk")],
            ("pass", "none"),
        ),
        # another organisation's pass does not count
        ("v=DMARC1; p=reject", ("pass", "other.co.uk"), [("pass", "co.uk")], ("fail", "reject")),
        ("v=DMARC1; p=none", ("fail", "example.co.uk"), (), ("fail", "none")),
        # pct=0: reject steps down to quarantine outside the sample
        ("v=DMARC1; p=reject; pct=0", ("fail", "example.co.uk"), (), ("fail", "quarantine")),
    ],
)
def test_it_aligns_and_applies_the_policy(dns_server, record, spf, dkim, expected):
    dns_server.set_zone("_dmarc.example.co.uk", {"TXT": [record]})
    result = _dmarc(ScanLookups(), from_domain="example.co.uk", spf=spf, dkim=dkim)
    assert (result.result, result.policy) == expected


def test_it_uses_the_organisational_record_and_its_subdomain_policy(dns_server):
    dns_server.set_zone("_dmarc.example.org", {"TXT": ["v=DMARC1; p=none; sp=reject"]})
    result = _dmarc(ScanLookups(), from_domain="news.example.org", spf=("fail", "x.test"))
    assert (result.result, result.policy) == ("fail", "reject")


def test_it_has_no_dmarc_result_without_a_record(dns_server):
    assert _dmarc(ScanLookups(), from_domain="example.net").result == "none"


def test_it_gives_dmarc_temperror_and_permerror(dns_server):
    dns_server.set_zone("_dmarc.broken.test", "SERVFAIL")
    dns_server.set_zone("_dmarc.twice.test", {"TXT": ["v=DMARC1; p=none", "v=DMARC1; p=reject"]})
    assert _dmarc(ScanLookups(), from_domain="broken.test").result == "temperror"
    assert _dmarc(ScanLookups(), from_domain="twice.test").result == "permerror"


# --- iprev and the header --------------------------------------------------------------------


def test_it_confirms_the_ptr_name_forward(dns_server):
    dns_server.set_zone("10.2.0.192.in-addr.arpa", {"PTR": ["mx.sender.test."]})
    dns_server.set_zone("mx.sender.test", {"A": [IP]})
    result = auth.iprev_check(ScanLookups(), IP)
    assert (result.result, result.ptr) == ("pass", "mx.sender.test")


def test_iprev_is_permerror_without_ptr_data_and_fails_when_the_name_points_elsewhere(
    dns_server,
):
    """RFC 8601 2.7.3: no PTR data published (NXDOMAIN or NODATA) is permerror; a PTR
    name that does not confirm forward is fail; a DNS error is temperror."""
    assert auth.iprev_check(ScanLookups(), IP).result == "permerror"  # NXDOMAIN
    lookups.cache_clear()
    dns_server.set_zone("10.2.0.192.in-addr.arpa", {"TXT": ["no ptr here"]})  # NODATA
    assert auth.iprev_check(ScanLookups(), IP) == auth.IprevResult("permerror")
    lookups.cache_clear()
    dns_server.set_zone("10.2.0.192.in-addr.arpa", {"PTR": ["liar.test."]})
    dns_server.set_zone("liar.test", {"A": ["198.51.100.7"]})
    assert auth.iprev_check(ScanLookups(), IP).result == "fail"
    lookups.cache_clear()
    dns_server.set_zone("liar.test", {})  # a PTR name without any address: still fail
    assert auth.iprev_check(ScanLookups(), IP).result == "fail"
    lookups.cache_clear()  # answers are kept between scans for their TTL
    dns_server.set_zone("10.2.0.192.in-addr.arpa", "SERVFAIL")
    assert auth.iprev_check(ScanLookups(), IP).result == "temperror"


def test_it_writes_an_rfc8601_header():
    results = auth.AuthResults(
        spf=auth.SpfResult("pass", "example.org"),
        helo_spf=None,
        dkim=[auth.DkimResult("pass", "example.org", "s1", "rsa-sha256")],
        arc=auth.ArcResult("none"),
        dmarc=auth.DmarcResult("pass", "example.org", "none", {"p": "reject"}),
        iprev=auth.IprevResult("pass", "mx.example.org"),
        ip=IP,
        helo="mx.example.org",
        sender="bounce@example.org",
    )
    assert results.header("mail.example.net") == (
        "Authentication-Results: mail.example.net;\r\n"
        "\tdkim=pass header.d=example.org header.s=s1 header.a=rsa-sha256;\r\n"
        "\tspf=pass smtp.mailfrom=bounce@example.org;\r\n"
        f"\tiprev=pass policy.iprev={IP} (mx.example.org);\r\n"
        "\tdmarc=pass header.from=example.org policy.dmarc=none"
    )


def test_it_verifies_at_most_ten_signatures(dns_server):
    signature = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s%d; h=from; bh=x; b=y\r\n"
    message = b"".join(signature % i for i in range(50)) + b"From: a@example.org\r\n\r\nhi\r\n"
    results = auth.dkim_check(ScanLookups(), message)
    assert len(results) == 10
    assert len(auth.dkim_keys(message)) == 12
