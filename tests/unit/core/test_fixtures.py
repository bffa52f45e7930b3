"""The shared network fixtures behave like the real peers they stand for."""

import smtplib
import socket

import dns.resolver
import pytest

from mailadmin.dns import make_resolver
from tests.support.dns_server import DnsServer, _bind_pair


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


def test_it_binds_the_dns_server_on_one_port_for_udp_and_tcp(dns_server):
    dns_server.set_zone("example.test", {"A": ["127.0.0.2"]})
    resolver = make_resolver()
    udp = resolver.resolve("example.test", "A", tcp=False)
    tcp = resolver.resolve("example.test", "A", tcp=True)
    assert [r.to_text() for r in udp] == [r.to_text() for r in tcp] == ["127.0.0.2"]


def test_it_moves_to_another_port_when_the_udp_port_is_taken():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        taken = squatter.getsockname()[1]
        tcp, udp = _bind_pair("127.0.0.1", first_port=taken)
        try:
            port = tcp.getsockname()[1]
            assert port != taken
            assert udp.getsockname() == ("127.0.0.1", port)
        finally:
            tcp.close()
            udp.close()


def test_it_frees_the_port_when_the_dns_server_stops():
    server = DnsServer().start()
    server.stop()
    assert not any(thread.is_alive() for thread in server._threads)
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", server.port))  # nothing holds it any more


def test_it_starts_many_dns_servers_side_by_side():
    servers = [DnsServer().start() for _ in range(50)]
    try:
        assert len({server.port for server in servers}) == 50
    finally:
        for server in servers:
            server.stop()
