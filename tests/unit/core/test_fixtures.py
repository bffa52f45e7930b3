"""The shared network fixtures behave like the real peers they stand for."""

import smtplib

import dns.resolver
import pytest

from mailadmin.dns import make_resolver


def test_it_records_messages_in_the_smtp_sink(smtp_sink):
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5) as client:
        client.sendmail("a@example.test", ["b@example.test"], b"Subject: hi\r\n\r\nbody\r\n")
    (received,) = smtp_sink.wait_for(1)
    assert received.mail_from == "a@example.test"
    assert received.rcpt_tos == ["b@example.test"]
    assert received.message["Subject"] == "hi"


def test_it_lets_the_sink_refuse_a_recipient(smtp_sink):
    smtp_sink.handler.rcpt_replies["nobody@example.test"] = "550 5.1.1 No such user"
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5) as client:
        client.ehlo()
        client.mail("a@example.test")
        assert client.rcpt("nobody@example.test") == (550, b"5.1.1 No such user")


def test_it_serves_zones_from_the_dns_server(dns_server):
    dns_server.set_zone(
        "example.test",
        {"MX": [(10, "mx.example.test.")], "TXT": ["v=spf1 -all"], "A": ["127.0.0.2"]},
    )
    resolver = make_resolver()
    assert [r.exchange.to_text() for r in resolver.resolve("example.test", "MX")] == [
        "mx.example.test."
    ]
    assert [r.to_text() for r in resolver.resolve("example.test", "TXT")] == ['"v=spf1 -all"']
    with pytest.raises(dns.resolver.NoAnswer):
        resolver.resolve("example.test", "AAAA")


def test_it_answers_nxdomain_servfail_and_silence(dns_server, settings):
    dns_server.set_zone("broken.test", "SERVFAIL")
    dns_server.set_zone("slow.test", "TIMEOUT")
    settings.MAILADMIN_DNS_TIMEOUT = 0.5
    resolver = make_resolver()
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("missing.test", "A")
    with pytest.raises(dns.resolver.NoNameservers):
        resolver.resolve("broken.test", "A")
    with pytest.raises(dns.resolver.LifetimeTimeout):
        resolver.resolve("slow.test", "A")
