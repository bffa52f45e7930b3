"""mailadmin.dns.WireResolver, the DNS check's resolver, against live DNS servers on
loopback: what dnspython's resolver did (answers, CNAME chains, NXDOMAIN, NoAnswer, SERVFAIL,
timeouts) plus TCP after truncation, the next nameserver after a refusal, and answers that
are not from the server asked being ignored."""

import socket
import threading

import dns.resolver
import pytest
from dnslib import QTYPE, RR, TXT, DNSRecord

from apps.domains.checks import check_domain, check_domains, run_sync
from mailadmin.dns import WireResolver, make_async_resolver
from tests.support.dns_server import DnsServer

HOST = "mx.example.test"
HOST_IP = "192.0.2.25"


def _resolve(resolver, name, rtype, **kwargs):
    async def go():
        async with resolver.session():
            return await resolver.resolve(name, rtype, **kwargs)

    return run_sync(go())


def test_it_answers_with_records_and_follows_cname_chains(dns_server):
    dns_server.set_zone("example.test", {"TXT": ["v=spf1 mx -all", "a" * 300]})
    dns_server.set_zone("www.example.test", {"CNAME": ["alias.example.test."]})
    dns_server.set_zone("alias.example.test", {"CNAME": ["example.test."]})
    answer = _resolve(make_async_resolver(), "EXAMPLE.test", "TXT")
    assert sorted(b"".join(r.strings).decode() for r in answer) == ["a" * 300, "v=spf1 mx -all"]
    assert answer.canonical_name.to_text() == "example.test."
    chained = _resolve(make_async_resolver(), "www.example.test.", "TXT")
    assert len(chained) == 2
    assert chained.canonical_name.to_text() == "example.test."
    cname = _resolve(make_async_resolver(), "www.example.test", "CNAME")
    assert [r.target.to_text() for r in cname] == ["alias.example.test."]


def test_an_answers_ttl_is_the_least_along_its_cname_chain(dns_server):
    dns_server.set_zone("www.example.test", {"CNAME": ["example.test."]})
    dns_server.set_zone("example.test", {"A": ["192.0.2.1"]})
    dns_server.ttls.update({"www.example.test": 30, "example.test": 3600})
    assert _resolve(make_async_resolver(), "example.test", "A").ttl == 3600
    assert _resolve(make_async_resolver(), "www.example.test", "A").ttl == 30
    dns_server.ttls["www.example.test"] = 7200
    assert _resolve(make_async_resolver(), "www.example.test", "A").ttl == 3600


def test_it_raises_what_dnspython_raises(dns_server, settings):
    dns_server.set_zone("example.test", {"A": ["127.0.0.1"]})
    dns_server.set_zone("broken.test", "SERVFAIL")
    dns_server.set_zone("slow.test", "TIMEOUT")
    resolver = make_async_resolver()
    with pytest.raises(dns.resolver.NXDOMAIN):
        _resolve(resolver, "nothing.example.test", "A")
    with pytest.raises(dns.resolver.NoAnswer):
        _resolve(resolver, "example.test", "MX")
    with pytest.raises(dns.resolver.NoNameservers) as servfail:
        _resolve(resolver, "broken.test", "A")
    assert servfail.value.kwargs["errors"][0][:4] == (
        "127.0.0.1",
        False,
        dns_server.port,
        "SERVFAIL",
    )
    with pytest.raises(dns.resolver.LifetimeTimeout):
        _resolve(resolver, "slow.test", "A", lifetime=0.3)


def test_it_asks_again_over_tcp_when_the_udp_answer_is_truncated(dns_server):
    key = "v=DKIM1; k=rsa; p=" + "A" * 392  # a 2048-bit key's record: two strings
    dns_server.set_zone("s1._domainkey.example.test", {"TXT": [key, "x" * 200]})
    dns_server.udp_limit = 512
    answer = _resolve(make_async_resolver(), "s1._domainkey.example.test", "TXT")
    assert sorted(b"".join(r.strings).decode() for r in answer) == sorted([key, "x" * 200])
    assert dns_server.tcp_queries == [("s1._domainkey.example.test", "TXT")]


def test_it_asks_the_next_nameserver_after_servfail(dns_server, settings):
    working = DnsServer({"example.test": {"MX": [(10, HOST + ".")]}}).start()
    try:
        dns_server.set_zone("example.test", "SERVFAIL")
        settings.MAILADMIN_DNS_NAMESERVERS = [
            ("127.0.0.1", dns_server.port),
            ("127.0.0.1", working.port),
        ]
        answer = _resolve(make_async_resolver(), "example.test", "MX")
        assert [r.exchange.to_text() for r in answer] == [HOST + "."]
        assert dns_server.queries == [("example.test", "MX")]
    finally:
        working.stop()


def test_it_ignores_an_answer_from_another_address():
    """An answer with the right ID and question but from another port is not taken (an
    off-path attacker's guess), so the query times out."""
    asked = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    asked.bind(("127.0.0.1", 0))
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))

    def answer_from_elsewhere():
        data, peer = asked.recvfrom(4096)
        reply = DNSRecord.parse(data).reply()
        reply.add_answer(RR("example.test.", QTYPE.TXT, rdata=TXT("spoofed"), ttl=60))
        other.sendto(reply.pack(), peer)

    thread = threading.Thread(target=answer_from_elsewhere, daemon=True)
    thread.start()
    resolver = WireResolver([asked.getsockname()], timeout=0.5, lifetime=0.5)
    try:
        with pytest.raises(dns.resolver.LifetimeTimeout):
            _resolve(resolver, "example.test", "TXT")
    finally:
        thread.join(timeout=2)
        asked.close()
        other.close()


def test_a_run_of_checks_asks_a_name_many_domains_need_once(dns_server):
    dns_server.set_zone(HOST, {"A": [HOST_IP]})
    sets = []
    for label in ("a", "b", "c"):
        dns_server.set_zone(f"{label}.example.test", {"MX": [(10, HOST + ".")]})
        sets.append(
            [
                {
                    "type": "MX",
                    "name": f"{label}.example.test.",
                    "content": f"10 {HOST}.",
                    "required": True,
                }
            ]
        )
    results = run_sync(
        check_domains(sets, concurrency=3, resolver=make_async_resolver(), hostname=HOST)
    )
    assert [r[0][0] for r in results] == ["ok", "ok", "ok"]
    assert dns_server.queries.count((HOST, "A")) == 1
    assert dns_server.queries.count((HOST, "AAAA")) == 1
    # a single check (no run around it) asks for itself
    run_sync(check_domain(sets[0], resolver=make_async_resolver(), hostname=HOST))
    assert dns_server.queries.count((HOST, "A")) == 2


def test_lookups_waiting_for_a_turn_keep_the_checks_deadline(dns_server, settings, monkeypatch):
    """With every turn taken by lookups of a silent server, the others wait, but a check
    still ends by its deadline; lookups of a working server just wait for their turn."""
    import time

    import mailadmin.dns

    monkeypatch.setattr(mailadmin.dns, "MAX_IN_FLIGHT", 2)
    settings.MAILADMIN_DNS_TIMEOUT = 5.0
    records = []
    for label in ("a", "b", "c", "d", "e"):
        dns_server.set_zone(f"{label}.example.test", "TIMEOUT")
        records.append({"type": "TXT", "name": f"{label}.example.test.", "content": "x"})
    started = time.monotonic()
    results = run_sync(
        check_domain(
            records,
            resolver=make_async_resolver(),
            hostname=HOST,
            outbound_ips=[HOST_IP],
            deadline=0.5,
        )
    )
    assert time.monotonic() - started < 2
    assert {r[0] for r in results} == {"error"}
    for label in ("a", "b", "c", "d", "e"):
        dns_server.set_zone(f"{label}.example.test", {"TXT": ["x"]})
    results = run_sync(
        check_domain(records, resolver=make_async_resolver(), hostname=HOST, outbound_ips=[HOST_IP])
    )
    assert [r[0] for r in results] == ["ok"] * 5


def test_check_all_in_a_daemonic_process_checks_in_that_process(dns_server, monkeypatch, caplog):
    """Celery's prefork children are daemonic and may not start processes: the checks then
    run in the task's process, and the log says how to use the cores."""
    import multiprocessing

    from apps.domains.check_workers import CheckConfig, Checker

    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True)
    dns_server.set_zone("a.example.test", {"MX": [(10, HOST + ".")]})
    config = CheckConfig(
        nameservers=[("127.0.0.1", dns_server.port)],
        timeout=2.0,
        hostname=HOST,
        outbound_ips=[HOST_IP],
        deadline=5.0,
        concurrency=2,
    )
    record = {"type": "MX", "name": "a.example.test.", "content": f"10 {HOST}.", "required": True}
    with Checker(config, processes=2) as checker:
        assert (checker.processes, checker.pool) == (1, None)
        assert [d[0][0] for d in checker.submit([[record], [record]])()] == ["ok", "ok"]
    assert "--pool threads" in caplog.text
