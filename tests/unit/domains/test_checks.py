"""check_record against a live DNS server on loopback, one record type at a time."""

import pytest

from apps.domains.checks import check_record
from mailadmin.dns import make_resolver

ZONE = "example.test"


def _record(type_: str, name: str, content: str) -> dict:
    return {"type": type_, "name": name, "content": content, "required": True, "purpose": ""}


@pytest.fixture
def check(dns_server):
    def run(type_: str, name: str, content: str):
        return check_record(make_resolver(), _record(type_, name, content))

    return run


def test_it_finds_an_mx_by_host_ignoring_case_and_priority(dns_server, check):
    dns_server.set_zone(ZONE, {"MX": [(20, "MX.Example.TEST.")]})
    assert check("MX", "example.test.", "10 mx.example.test.") == (
        "ok",
        ["20 MX.Example.TEST."],
        "",
    )


def test_it_reports_the_mx_hosts_it_found_instead(dns_server, check):
    dns_server.set_zone(ZONE, {"MX": [(10, "other.test."), (20, "backup.test.")]})
    status, found, detail = check("MX", "example.test.", "10 mx.example.test.")
    assert status == "mismatch"
    assert found == ["10 other.test.", "20 backup.test."]
    assert detail == "no MX points to mx.example.test."


def test_it_calls_a_name_without_the_type_missing(dns_server, check):
    dns_server.set_zone(ZONE, {"A": ["127.0.0.1"]})
    assert check("MX", "example.test.", "10 mx.example.test.") == (
        "missing",
        [],
        "no MX record at example.test.",
    )


def test_it_calls_a_name_that_does_not_exist_missing(dns_server, check):
    status, found, detail = check("CNAME", "autoconfig.example.test.", "mx.example.test.")
    assert (status, found) == ("missing", [])
    assert "NXDOMAIN" in detail


def test_it_says_servfail_is_an_error(dns_server, check):
    dns_server.set_zone(ZONE, "SERVFAIL")
    status, found, detail = check("MX", "example.test.", "10 mx.example.test.")
    assert (status, found) == ("error", [])
    assert "SERVFAIL" in detail
    assert dns_server.address in detail


def test_it_says_a_timeout_is_an_error(dns_server, check, settings):
    settings.MAILADMIN_DNS_TIMEOUT = 0.3
    dns_server.set_zone(ZONE, "TIMEOUT")
    status, found, detail = check("TXT", "example.test.", "v=spf1 mx -all")
    assert (status, found) == ("error", [])
    assert detail.startswith("timeout: no answer for example.test. TXT within 0.3s")


def test_it_says_an_unreachable_nameserver_is_an_error(settings):
    settings.MAILADMIN_DNS_NAMESERVERS = [("127.0.0.1", 9)]  # nothing answers there
    settings.MAILADMIN_DNS_TIMEOUT = 0.3
    record = _record("MX", "example.test.", "10 mx.example.test.")
    status, _, detail = check_record(make_resolver(), record)
    assert status == "error"
    assert detail.startswith("timeout")


def test_it_compares_spf_by_normalized_text(dns_server, check):
    dns_server.set_zone(ZONE, {"TXT": ["v=spf1   mx  -all", "google-site-verification=x"]})
    status, found, _ = check("TXT", "example.test.", "v=spf1 mx -all")
    assert status == "ok"
    assert found == ["v=spf1   mx  -all", "google-site-verification=x"]


def test_it_shows_a_different_spf_record(dns_server, check):
    dns_server.set_zone(ZONE, {"TXT": ["v=spf1 a ~all"]})
    assert check("TXT", "example.test.", "v=spf1 mx -all") == (
        "mismatch",
        ["v=spf1 a ~all"],
        "the SPF record differs",
    )


def test_it_rejects_two_spf_records(dns_server, check):
    dns_server.set_zone(ZONE, {"TXT": ["v=spf1 mx -all", "v=spf1 a -all"]})
    status, found, detail = check("TXT", "example.test.", "v=spf1 mx -all")
    assert status == "mismatch"
    assert found == ["v=spf1 mx -all", "v=spf1 a -all"]
    assert detail == "2 SPF records; RFC 7208 allows one"


def test_it_calls_spf_missing_among_other_txt_records(dns_server, check):
    dns_server.set_zone(ZONE, {"TXT": ["hello"]})
    assert check("TXT", "example.test.", "v=spf1 mx -all") == (
        "missing",
        ["hello"],
        "no SPF record (v=spf1)",
    )


def test_it_accepts_any_dmarc_policy(dns_server, check):
    dns_server.set_zone("_dmarc.example.test", {"TXT": ["v=DMARC1; p=reject; rua=mailto:x@y"]})
    status, found, _ = check("TXT", "_dmarc.example.test.", "v=DMARC1; p=none")
    assert status == "ok"
    assert found == ["v=DMARC1; p=reject; rua=mailto:x@y"]


def test_it_wants_a_dmarc_record(dns_server, check):
    dns_server.set_zone("_dmarc.example.test", {"TXT": ["something else"]})
    assert check("TXT", "_dmarc.example.test.", "v=DMARC1; p=none")[0] == "missing"


def test_it_matches_a_dkim_key_split_over_strings(dns_server, check):
    key = "MIIB" + "A" * 380 + "QAB"  # longer than one 255-byte TXT string
    dns_server.set_zone("s1._domainkey.example.test", {"TXT": [f"v=DKIM1; k=rsa; p={key}"]})
    expected = f"v=DKIM1; k=rsa; h=sha256; p={key}"
    assert check("TXT", "s1._domainkey.example.test.", expected)[0] == "ok"


def test_it_reports_a_different_dkim_key(dns_server, check):
    dns_server.set_zone("s1._domainkey.example.test", {"TXT": ["v=DKIM1; k=rsa; p=OLDKEY"]})
    status, found, detail = check("TXT", "s1._domainkey.example.test.", "v=DKIM1; p=NEWKEY")
    assert (status, found) == ("mismatch", ["v=DKIM1; k=rsa; p=OLDKEY"])
    assert "p=" in detail


def test_it_matches_a_plain_txt_record_exactly(dns_server, check):
    dns_server.set_zone(ZONE, {"TXT": ["mailadmin-verification=abc"]})
    assert check("TXT", "example.test.", "mailadmin-verification=abc")[0] == "ok"
    assert check("TXT", "example.test.", "mailadmin-verification=xyz")[0] == "mismatch"


def test_it_compares_a_cname_by_target(dns_server, check):
    dns_server.set_zone("autoconfig.example.test", {"CNAME": ["MX.example.test."]})
    assert check("CNAME", "autoconfig.example.test.", "mx.example.test.")[0] == "ok"
    status, found, _ = check("CNAME", "autoconfig.example.test.", "other.test.")
    assert (status, found) == ("mismatch", ["MX.example.test."])


def test_it_compares_srv_by_port_and_target(dns_server, check):
    name = "_submission._tcp.example.test"
    dns_server.set_zone(name, {"SRV": [(5, 10, 587, "mx.example.test.")]})
    assert check("SRV", f"{name}.", "0 1 587 mx.example.test.")[0] == "ok"
    status, found, _ = check("SRV", f"{name}.", "0 1 465 mx.example.test.")
    assert (status, found) == ("mismatch", ["5 10 587 mx.example.test."])
