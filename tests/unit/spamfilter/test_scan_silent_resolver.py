"""A whole scan against a resolver that never answers: every check ends in temperror
within the scan's DNS deadline, never a hang."""

from __future__ import annotations

import socket
import time

import pytest

from apps.spamfilter import services
from tests.unit.spamfilter.test_auth import _serve_vector


@pytest.fixture
def silent_dns(settings):
    """A UDP (and TCP) port that takes queries and never answers."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    settings.MAILADMIN_DNS_NAMESERVERS = [("127.0.0.1", udp.getsockname()[1])]
    settings.MAILADMIN_DNS_TIMEOUT = 5.0
    settings.MAILADMIN_SPAM_DNS_DEADLINE = 1.0
    yield
    udp.close()


@pytest.mark.django_db
def test_a_silent_resolver_costs_one_deadline_and_gives_temperror(dns_server, silent_dns):
    message = _serve_vector(dns_server, "arc-001.txt")  # DKIM- and ARC-signed
    started = time.monotonic()
    verdict = services.scan(
        message=message,
        remote_ip="192.0.2.10",
        ehlo_domain="mx.sender.test",
        env_from="bounce@sender.test",
        env_rcpt_to=["a@b.test"],
    )
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed
    results = verdict.auth
    assert results.spf.result == "temperror"
    assert {r.result for r in results.dkim} == {"temperror"}
    assert results.arc.result == "temperror"
    assert results.dmarc.result == "temperror"
    assert results.iprev.result == "temperror"
    assert "spf=temperror" in verdict.authentication_results


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_it_strips_only_the_fields_claiming_our_name(settings, eol):
    settings.MAILADMIN_SPAM_AUTHSERV_ID = "mx.ours.test"
    lines = [
        b"Received: from a",
        b"Authentication-Results: (comment) mx.ours.test 1; none",
        b"Authentication-Results: mx.ours.test.evil; dkim=pass",
        b"Subject: hi",
        b"X-Spam-Status: No,",
        b"\tscore=-9",
    ]
    data = eol.join(lines) + eol + eol + b"X-Spam-Status: in the body" + eol
    expected = eol.join([lines[0], lines[2], lines[3]]) + eol + eol
    assert services.strip_forged_headers(data) == expected + b"X-Spam-Status: in the body" + eol
    clean = b"Subject: hi" + eol + eol + b"Authentication-Results: mx.ours.test; x" + eol
    assert services.strip_forged_headers(clean) is clean


def test_it_strips_a_field_claiming_our_name_as_a_quoted_string(settings):
    """RFC 8601 2.2: the authserv-id is a value, a token or a quoted-string that means the
    same; written "mx.ours.test", a sender's forged field was kept as another server's."""
    settings.MAILADMIN_SPAM_AUTHSERV_ID = "mx.ours.test"
    for claim in (b'"mx.ours.test"', b'"MX.ours\\.test" 1', b'(c) "mx.ours.test" (c)'):
        data = b"Authentication-Results: " + claim + b"; dkim=pass\r\nSubject: hi\r\n\r\n"
        assert services.strip_forged_headers(data) == b"Subject: hi\r\n\r\n", claim
    for other in (b'"mx.ours.test.evil"', b'"mx.ours.test x"', b'"mx.ours.test'):
        kept = b"Authentication-Results: " + other + b"; dkim=pass\r\nSubject: hi\r\n\r\n"
        assert services.strip_forged_headers(kept) == kept, other


@pytest.mark.django_db
def test_an_ipv4_mapped_peer_is_judged_as_its_ipv4_address(dns_server):
    """A listener bound to [::] sees IPv4 clients as ::ffff:a.b.c.d: their PTR, SPF and
    the IPv4 block lists must still be those of a.b.c.d."""
    dns_server.set_zone("10.2.0.192.in-addr.arpa", {"PTR": ["mx.sender.test."]})
    dns_server.set_zone("mx.sender.test", {"A": ["192.0.2.10"]})
    dns_server.set_zone("sender.test", {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]})
    verdict = services.scan(
        message=b"From: a@sender.test\r\nSubject: hi\r\n\r\nhello\r\n",
        remote_ip="::ffff:192.0.2.10",
        ehlo_domain="mx.sender.test",
        env_from="a@sender.test",
        env_rcpt_to=["b@c.test"],
    )
    assert (verdict.auth.iprev.result, verdict.auth.spf.result) == ("pass", "pass")
    assert verdict.auth.ip == "192.0.2.10"


def test_nested_comments_in_a_forged_field_are_read_in_linear_time(settings):
    """The authserv-id was found by removing the innermost comments again and again: a
    pass per level, so an Authentication-Results of 20,000 nested '(' took 6 s at DATA."""
    settings.MAILADMIN_SPAM_AUTHSERV_ID = "mx.ours.test"
    deep = b"(" * 30_000 + b"x" + b")" * 30_000
    data = b"Authentication-Results: " + deep + b" mx.ours.test; spf=pass\r\nSubject: hi\r\n\r\n"
    started = time.monotonic()
    assert services.strip_forged_headers(data) == b"Subject: hi\r\n\r\n"
    assert time.monotonic() - started < 1.0
    kept = b"Authentication-Results: (a (b) c mx.ours.test; spf=pass\r\n\r\n"  # '(' unmatched
    assert services.strip_forged_headers(kept) == kept
