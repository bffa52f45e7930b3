"""check_domain against a live DNS server on loopback, one record type at a time."""

import time

import pytest

from apps.domains.checks import check_domain, run_sync
from mailadmin.dns import make_async_resolver

ZONE = "example.test"
HOST = "mx.example.test"
HOST_IP = "192.0.2.25"


def _record(type_: str, name: str, content: str) -> dict:
    return {"type": type_, "name": name, "content": content, "required": True, "purpose": ""}


def check_record(record: dict, *, outbound_ips=(HOST_IP,), deadline: float = 15.0):
    (result,) = run_sync(
        check_domain(
            [record],
            resolver=make_async_resolver(),
            hostname=HOST,
            outbound_ips=outbound_ips,
            deadline=deadline,
        )
    )
    return result


@pytest.fixture
def check(dns_server):
    dns_server.set_zone(HOST, {"A": [HOST_IP]})

    def run(type_: str, name: str, content: str):
        return check_record(_record(type_, name, content))

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
    status, _, detail = check_record(record)
    assert status == "error"
    assert detail.startswith("timeout")


def test_it_passes_spf_that_authorises_this_server_through_the_mx(dns_server, check):
    dns_server.set_zone(ZONE, {"MX": [(10, HOST + ".")], "TXT": ["v=spf1   MX  -ALL", "x=y"]})
    assert check("TXT", "example.test.", "v=spf1 mx -all") == (
        "ok",
        ["v=spf1   MX  -ALL", "x=y"],
        f"SPF passes for this server ({HOST_IP})",
    )


def test_it_passes_spf_that_authorises_this_server_by_ip4_or_include(dns_server, check):
    dns_server.set_zone(ZONE, {"TXT": ["v=spf1 include:_spf.provider.test ~all"]})
    dns_server.set_zone("_spf.provider.test", {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]})
    assert check("TXT", "example.test.", "v=spf1 mx -all")[0] == "ok"
    dns_server.set_zone(ZONE, {"TXT": [f"v=spf1 -ip4:198.51.100.1 ip4:{HOST_IP} -all"]})
    assert check("TXT", "example.test.", "v=spf1 mx -all")[0] == "ok"


def test_spf_passes_whatever_its_explanation_host_does(dns_server, check, settings):
    """RFC 7208 6.2: exp= explains a fail and changes no result. pyspf asked it before any
    mechanism, so a silent explanation server made a record that authorises this server
    look like a DNS error here, as in the scan."""
    settings.MAILADMIN_DNS_TIMEOUT = 0.3
    dns_server.set_zone(ZONE, {"TXT": [f"v=spf1 ip4:{HOST_IP} -all exp=why.example.test"]})
    dns_server.set_zone("why.example.test", "TIMEOUT")
    assert check("TXT", "example.test.", "v=spf1 mx -all")[0] == "ok"
    assert ("why.example.test", "TXT") not in dns_server.queries


def test_spf_with_a_ptr_whose_lookup_fails_is_judged_on_the_rest(dns_server, check):
    """RFC 7208 5.5: a DNS error on the ptr mechanism's lookup means no match; pyspf
    ended the check with temperror, which this page showed as a DNS error."""
    reverse = ".".join(reversed(HOST_IP.split("."))) + ".in-addr.arpa"
    dns_server.set_zone(reverse, "SERVFAIL")
    dns_server.set_zone(ZONE, {"TXT": [f"v=spf1 ptr ip4:{HOST_IP} -all"]})
    assert check("TXT", "example.test.", "v=spf1 mx -all")[0] == "ok"


def test_it_says_spf_that_does_not_cover_this_server(dns_server, check):
    dns_server.set_zone(ZONE, {"TXT": ["v=spf1 a ~all"], "A": ["198.51.100.7"]})
    assert check("TXT", "example.test.", "v=spf1 mx -all") == (
        "mismatch",
        ["v=spf1 a ~all"],
        f"the SPF record does not authorise this server ({HOST_IP}): an SPF check gives softfail",
    )


def test_it_rejects_two_spf_records(dns_server, check):
    dns_server.set_zone(ZONE, {"TXT": ["v=spf1 mx -all", "v=spf1 a -all"]})
    status, found, detail = check("TXT", "example.test.", "v=spf1 mx -all")
    assert status == "mismatch"
    assert found == ["v=spf1 mx -all", "v=spf1 a -all"]
    assert detail == (
        "2 SPF records; RFC 7208 allows one, so receivers treat the domain's SPF as broken "
        "(permerror)"
    )


@pytest.mark.parametrize("spf", ["v=spf1 mx +all", "v=spf1 all"])
def test_it_rejects_spf_that_lets_everyone_send(dns_server, check, spf):
    dns_server.set_zone(ZONE, {"TXT": [spf]})
    assert check("TXT", "example.test.", "v=spf1 mx -all") == (
        "mismatch",
        [spf],
        "the SPF record ends in +all: it lets every server on the internet send as example.test",
    )


def test_it_rejects_spf_needing_more_than_ten_lookups(dns_server, check):
    includes = " ".join(f"include:s{i}.example.test" for i in range(11))
    dns_server.set_zone(ZONE, {"TXT": [f"v=spf1 {includes} ip4:{HOST_IP} -all"]})
    for i in range(11):
        dns_server.set_zone(f"s{i}.example.test", {"TXT": ["v=spf1 -ip4:203.0.113.9 ?all"]})
    status, _, detail = check("TXT", "example.test.", "v=spf1 mx -all")
    assert status == "mismatch"
    assert detail.startswith(
        "the SPF record needs more than 10 DNS lookups (RFC 7208 4.6.4), so receivers "
        "answer permerror: "
    )


def test_it_cannot_check_spf_when_this_servers_address_is_unknown(dns_server):
    dns_server.set_zone(ZONE, {"TXT": ["v=spf1 mx -all"]})
    status, _, detail = check_record(
        _record("TXT", "example.test.", "v=spf1 mx -all"), outbound_ips=()
    )
    assert status == "error"
    assert detail == (
        f"could not check SPF: this server's address is unknown ({HOST} has no A or AAAA record)"
    )


def test_it_calls_spf_missing_among_other_txt_records(dns_server, check):
    dns_server.set_zone(ZONE, {"TXT": ["hello"]})
    assert check("TXT", "example.test.", "v=spf1 mx -all") == (
        "missing",
        ["hello"],
        "no SPF record (v=spf1)",
    )


def test_it_accepts_any_valid_dmarc_policy(dns_server, check):
    text = "v=DMARC1; p=reject; rua=mailto:dmarc@example.test; adkim=s; pct=50"
    dns_server.set_zone("_dmarc.example.test", {"TXT": [text]})
    assert check("TXT", "_dmarc.example.test.", "v=DMARC1; p=none") == ("ok", [text], "")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("v=DMARC1; p=rejectt", "p=rejectt is not none, quarantine or reject"),
        ("v=DMARC1; p=none; sp=all", "sp=all is not none, quarantine or reject"),
        ("v=DMARC1; p=none; policy=reject", "unknown tag policy"),
        ("v=DMARC1; rua=mailto:d@example.test", "no policy (p=)"),
        ("v=DMARC1; p=none; pct=150", "pct=150 is not a number from 0 to 100"),
        ("v=DMARC1; p=none; rua=https://x.test/", "rua https://x.test/ is not a mailto: address"),
        ("v=DMARC1; p=none; adkim=x", "adkim=x is not r or s"),
    ],
)
def test_it_says_what_is_wrong_in_a_dmarc_record(dns_server, check, text, problem):
    dns_server.set_zone("_dmarc.example.test", {"TXT": [text]})
    assert check("TXT", "_dmarc.example.test.", "v=DMARC1; p=none") == (
        "mismatch",
        [text],
        f"invalid DMARC record: {problem}",
    )


def test_it_wants_outside_report_domains_to_accept_the_reports(dns_server, check):
    text = "v=DMARC1; p=none; rua=mailto:r@reports.test,mailto:d@example.test"
    dns_server.set_zone("_dmarc.example.test", {"TXT": [text]})
    assert check("TXT", "_dmarc.example.test.", "v=DMARC1; p=none") == (
        "mismatch",
        [text],
        "invalid DMARC record: reports go to reports.test, which does not accept them for "
        "example.test (no v=DMARC1 record at example.test._report._dmarc.reports.test.)",
    )
    dns_server.set_zone("example.test._report._dmarc.reports.test", {"TXT": ["v=DMARC1"]})
    assert check("TXT", "_dmarc.example.test.", "v=DMARC1; p=none")[0] == "ok"


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


def test_it_follows_a_cname_chain_to_a_txt_record(dns_server, check):
    key = "v=DKIM1; k=ed25519; p=KEY"
    dns_server.set_zone("s1._domainkey.example.test", {"CNAME": ["s1.keys.provider.test."]})
    dns_server.set_zone("s1.keys.provider.test", {"CNAME": ["k.provider.test."]})
    dns_server.set_zone("k.provider.test", {"TXT": [key]})
    assert check("TXT", "s1._domainkey.example.test.", key) == (
        "ok",
        [key],
        "(found at k.provider.test., through a CNAME)",
    )


def test_it_follows_a_cname_chain_to_the_expected_host(dns_server, check):
    dns_server.set_zone("autoconfig.example.test", {"CNAME": ["cfg.provider.test."]})
    dns_server.set_zone("cfg.provider.test", {"CNAME": ["MX.example.test."]})
    assert check("CNAME", "autoconfig.example.test.", "mx.example.test.") == (
        "ok",
        ["cfg.provider.test."],
        "reached through the CNAME chain autoconfig.example.test. -> cfg.provider.test. "
        "-> MX.example.test.",
    )


def test_it_diagnoses_a_null_mx(dns_server, check):
    dns_server.set_zone(ZONE, {"MX": [(0, ".")]})
    assert check("MX", "example.test.", "10 mx.example.test.") == (
        "mismatch",
        ["0 ."],
        "null MX (RFC 7505): the domain says it accepts no mail at all; replace it with an "
        "MX pointing to mx.example.test.",
    )


def test_it_diagnoses_an_mx_pointing_at_an_alias(dns_server, check):
    dns_server.set_zone(ZONE, {"MX": [(10, "mail.example.test.")]})
    dns_server.set_zone("mail.example.test", {"CNAME": ["mx.example.test."]})
    assert check("MX", "example.test.", "10 mx.example.test.") == (
        "mismatch",
        ["10 mail.example.test."],
        "the MX points to mail.example.test., an alias (CNAME) to mx.example.test., which "
        "leads to mx.example.test.; RFC 2181 10.3 forbids MX targets that are aliases: point "
        "the MX to mx.example.test.",
    )


def test_it_asks_each_name_once_and_all_at_once(dns_server):
    dns_server.set_zone(HOST, {"A": [HOST_IP]})
    dns_server.set_zone(ZONE, {"MX": [(10, HOST + ".")], "TXT": ["v=spf1 mx -all", "tok=1"]})
    records = [
        _record("TXT", "example.test.", "v=spf1 mx -all"),
        _record("TXT", "example.test.", "tok=1"),
        _record("MX", "example.test.", f"10 {HOST}."),
    ]
    results = run_sync(
        check_domain(records, resolver=make_async_resolver(), hostname=HOST, outbound_ips=[HOST_IP])
    )
    assert [r[0] for r in results] == ["ok", "ok", "ok"]
    ours = [q for q in dns_server.queries if q[0] == "example.test"]
    # the SPF evaluation reuses the check's answers: each name/type is asked once
    assert sorted(ours) == [("example.test", "MX"), ("example.test", "TXT")]


def test_it_ends_a_check_of_a_silent_server_by_its_deadline(dns_server, settings):
    settings.MAILADMIN_DNS_TIMEOUT = 5.0
    for name in ("example.test", "_dmarc.example.test", "a.example.test", HOST):
        dns_server.set_zone(name, "TIMEOUT")
    records = [_record("TXT", "example.test.", "v=spf1 mx -all")] + [
        _record("TXT", f"{label}.example.test.", "x") for label in ("_dmarc", "a")
    ]
    started = time.monotonic()
    results = run_sync(
        check_domain(records, resolver=make_async_resolver(), hostname=HOST, deadline=0.5)
    )
    elapsed = time.monotonic() - started
    assert elapsed < 2
    assert {r[0] for r in results} == {"error"}
    assert results[1][2] == "timeout: no answer for _dmarc.example.test. TXT within 0.5s"


def test_it_runs_a_check_from_code_already_inside_an_event_loop(dns_server):
    dns_server.set_zone(ZONE, {"MX": [(10, HOST + ".")]})
    record = _record("MX", "example.test.", f"10 {HOST}.")

    async def caller():  # as under Playwright's or an ASGI server's loop
        return run_sync(check_domain([record], resolver=make_async_resolver(), hostname=HOST))

    assert run_sync(caller())[0][0] == "ok"
