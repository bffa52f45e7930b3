"""apps.spamfilter.lookups, the scan's DNS, against a live DNS server on loopback: what is
asked, when an answer is kept for the next scan and for how long, and the deadline."""

from __future__ import annotations

import time

from apps.spamfilter.lookups import ERROR, FOUND, NONE, Answer, ScanLookups


def _asked(dns_server, name: str) -> int:
    return sum(1 for asked, _ in dns_server.queries if asked == name)


def test_the_ones_known_up_front_are_asked_at_once_and_each_only_once(dns_server):
    dns_server.set_zone("a.test", {"A": ["192.0.2.1"], "TXT": ["v=spf1 -all"]})
    dns_server.set_zone("b.test", {"MX": [(10, "mx.b.test.")]})
    lookups = ScanLookups()
    lookups.prefetch([("a.test", "A"), ("A.test.", "TXT"), ("b.test", "MX"), ("c.test", "A")])
    assert sorted(dns_server.queries) == [
        ("a.test", "A"), ("a.test", "TXT"), ("b.test", "MX"), ("c.test", "A"),
    ]  # fmt: skip
    assert lookups.get("a.test", "A") == lookups.get("A.TEST", "A")
    assert lookups.get("a.test", "A").values == ("192.0.2.1",)
    assert lookups.get("a.test", "TXT").values == ("v=spf1 -all",)
    assert lookups.get("b.test", "MX").values == ((10, "mx.b.test"),)
    assert lookups.get("c.test", "A") == Answer(NONE, (), "c.test does not exist")
    assert lookups.get("b.test", "A").detail == "no A record at b.test"
    assert lookups.queries == 5 and len(dns_server.queries) == 5


def test_answers_are_kept_for_the_next_scan_for_their_ttl_at_most(dns_server, settings):
    settings.MAILADMIN_SPAM_DNS_CACHE_SECONDS = 300
    dns_server.set_zone("short.test", {"TXT": ["one"]})
    dns_server.set_zone("long.test", {"TXT": ["two"]})
    dns_server.ttls.update({"short.test": 1, "long.test": 3600})
    ScanLookups().prefetch([("short.test", "TXT"), ("long.test", "TXT")])
    again = ScanLookups()
    assert again.get("short.test", "TXT").values == ("one",)
    assert again.get("long.test", "TXT").values == ("two",)
    assert again.queries == 0  # both kept
    time.sleep(1.1)
    later = ScanLookups()
    assert later.get("short.test", "TXT").status == FOUND
    assert later.get("long.test", "TXT").status == FOUND
    assert later.queries == 1  # the one whose TTL ran out
    assert (_asked(dns_server, "short.test"), _asked(dns_server, "long.test")) == (2, 1)


def test_nothing_is_kept_when_the_setting_says_zero(dns_server, settings):
    settings.MAILADMIN_SPAM_DNS_CACHE_SECONDS = 0
    dns_server.set_zone("a.test", {"A": ["192.0.2.1"]})
    for _ in range(3):
        assert ScanLookups().get("a.test", "A").values == ("192.0.2.1",)
    assert _asked(dns_server, "a.test") == 3


def test_a_failure_is_kept_only_for_the_scan_that_saw_it(dns_server):
    dns_server.set_zone("flaky.test", "SERVFAIL")
    first = ScanLookups()
    failed = first.get("flaky.test", "TXT")
    assert failed.status == ERROR
    assert failed.detail.startswith("lookup of flaky.test TXT failed: ")
    assert first.get("flaky.test", "TXT") is failed and first.queries == 1
    dns_server.set_zone("flaky.test", {"TXT": ["back"]})
    assert ScanLookups().get("flaky.test", "TXT").values == ("back",)


def test_past_the_deadline_nothing_is_sent(dns_server):
    dns_server.set_zone("silent.test", "TIMEOUT")
    dns_server.set_zone("late.test", {"A": ["192.0.2.1"]})
    lookups = ScanLookups(deadline=0.3)
    started = time.monotonic()
    lookups.prefetch([("silent.test", "A"), ("silent.test", "AAAA")])
    assert lookups.get("silent.test", "A").detail == "timeout asking silent.test A"
    assert time.monotonic() - started < 1.0  # one deadline for both, not one each
    late = lookups.get("late.test", "A")
    assert late == Answer(
        ERROR, (), "late.test A not asked: the scan's DNS deadline of 0.3s passed"
    )
    assert _asked(dns_server, "late.test") == 0


def test_what_is_not_a_dns_name_is_never_asked(dns_server):
    lookups = ScanLookups()
    lookups.prefetch([("", "A"), ("a..test", "A"), ("x" * 64 + ".test", "TXT")])
    assert lookups.get("a..test", "A") == Answer(NONE, (), "'a..test' is not a DNS name")
    assert dns_server.queries == [] and lookups.queries == 0
