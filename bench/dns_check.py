"""Verify 10,000 domains' DNS against a local DNS server and print the time, one domain
after another and with bounded concurrency.

    .venv/bin/python bench/dns_check.py [--domains 10000] [--concurrency 50]
        [--sequential 500] [--processes 2] [--resolver wire|dnspython]

Every domain publishes its whole record set (MX, SPF, an RSA DKIM key, DMARC, the
ownership token, TLS-RPT, MTA-STS, the autoconfig names and the SRV records: 22 lookups, plus
this server's A and AAAA once per check), so every check does its full work and ends "ok".

The DNS server is a separate process answering from pre-built wire responses (the
loopback test server, tests/support/dns_server.py, builds each answer with dnslib and is
itself the bottleneck well below 1,000 queries/s). The checks are apps.domains.checks
unchanged: mailadmin.dns's resolver (or dnspython's asyncio resolver, `--resolver
dnspython`, to compare), SPF by pyspf, no database (storing results is measured by the task
tests, not here). `--sequential N` times N domains one after another and scales the time
to all domains. `--processes N` splits the domains across N client processes, as Check all
does. Besides the wall time it prints the CPU seconds the checks used (all processes) and
the load average: on a machine shared with other work the wall time says little alone.

The concurrent run is Check all's own code without the database: batches of 500 domains,
each split over `--processes` spawned worker processes (apps.domains.check_workers), their
start-up and the pickling of records and results included. `--resolver dnspython` (and
`--sequential`) run checks.check_domains in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOSTNAME = "mx.bench.test"
HOST_IP = "192.0.2.25"


def configure(port: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailadmin.settings")
    os.environ.setdefault("MAILADMIN_DEBUG", "0")
    os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")  # nothing is stored
    if port:
        os.environ["MAILADMIN_DNS_NAMESERVERS"] = f"127.0.0.1:{port}"
    os.environ["MAILADMIN_HOSTNAME"] = HOSTNAME
    import django

    django.setup()


class _Key:
    """What records.domain_records reads of a DKIM key."""

    def __init__(self, public_key: str) -> None:
        self.selector = "202611r"
        self.algorithm = "rsa"
        self.public_key = public_key


def record_sets(count: int) -> list[list[dict]]:
    from apps.domains import dkim, records

    key = _Key(dkim.generate("rsa").public_key)
    return [
        records.domain_records(
            domain=f"d{i:05}.bench.test",
            hostname=HOSTNAME,
            verification_token=f"{i:032x}",
            dkim_keys=[key],
        )
        for i in range(count)
    ]


# --- the DNS server ------------------------------------------------------------------------


def _rdata(rtype: str, content: str) -> str:
    if rtype == "TXT":
        from apps.domains.zone import txt_data

        return txt_data(content)
    return content


def wire_answers(sets: list[list[dict]]) -> dict[tuple[bytes, int], bytes]:
    """{(lowercased wire qname, qtype): response wire without its id} for every record."""
    import dns.message
    import dns.name
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset

    grouped: dict[tuple[str, str], list[str]] = {}
    for records in sets:
        for r in records:
            grouped.setdefault((r["name"], r["type"]), []).append(_rdata(r["type"], r["content"]))
    grouped[(HOSTNAME + ".", "A")] = [HOST_IP]
    answers = {}
    for (name, rtype), values in grouped.items():
        query = dns.message.make_query(name, rtype)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        response.answer.append(dns.rrset.from_text_list(name, 60, "IN", rtype, values))
        qname = dns.name.from_text(name).to_wire()
        answers[(qname.lower(), dns.rdatatype.from_text(rtype))] = response.to_wire()[2:]
    return answers


def _empty_answer(data: bytes, end: int) -> bytes:
    """NOERROR with no records (a name we know without that type, or an unknown one)."""
    flags = bytes([0x81 | (data[2] & 0x01), 0x80])  # QR, RD copied, RA
    return data[:2] + flags + b"\x00\x01\x00\x00\x00\x00\x00\x00" + data[12 : end + 4]


def serve(sock: socket.socket, answers: dict[tuple[bytes, int], bytes]) -> None:
    while True:
        data, peer = sock.recvfrom(4096)
        end = data.index(b"\x00", 12) + 1  # qname ends at the root label (no compression)
        qtype = int.from_bytes(data[end : end + 2], "big")
        cached = answers.get((data[12:end].lower(), qtype))
        sock.sendto(data[:2] + cached if cached else _empty_answer(data, end), peer)


def start_server(sets: list[list[dict]]) -> tuple[multiprocessing.Process, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    answers = wire_answers(sets)
    process = multiprocessing.Process(target=serve, args=(sock, answers), daemon=True)
    process.start()
    return process, sock.getsockname()[1]


# --- the checks ----------------------------------------------------------------------------


RESOLVER = "wire"


def run_checks(sets: list[list[dict]], concurrency: int) -> list[list[tuple]]:
    from apps.domains import checks
    from mailadmin.dns import make_async_resolver, make_dnspython_async_resolver

    make = make_async_resolver if RESOLVER == "wire" else make_dnspython_async_resolver
    return asyncio.run(
        checks.check_domains(
            sets,
            concurrency=concurrency,
            resolver=make(),
            hostname=HOSTNAME,
            deadline=15,
        )
    )


def check_all_way(sets, concurrency: int, processes: int, port: int):
    """What Check all does with the domains (apps.domains.check_workers): batches of
    CHECK_ALL_BATCH, each split over `processes` spawned worker processes, the next batch
    checked while the previous one's results are taken (stored, in Check all). Returns
    (domains all ok, the first domain not all ok, CPU seconds of this and the workers)."""
    from django.conf import settings

    from apps.domains import check_workers
    from apps.domains.services import CHECK_ALL_BATCH

    config = check_workers.CheckConfig(
        nameservers=[("127.0.0.1", port)],
        timeout=settings.MAILADMIN_DNS_TIMEOUT,
        hostname=HOSTNAME,
        outbound_ips=[],
        deadline=15,
        concurrency=concurrency,
    )
    ok, bad = 0, None
    cpu_started = time.process_time()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)

    def take(results) -> None:
        nonlocal ok, bad
        for domain in results():
            if all(r[0] == "ok" for r in domain):
                ok += 1
            elif bad is None:
                bad = domain

    with check_workers.Checker(config, processes=processes) as checker:
        pending = None
        for start in range(0, len(sets), CHECK_ALL_BATCH):
            checking = checker.submit(sets[start : start + CHECK_ALL_BATCH])
            if pending is not None:
                take(pending)
            pending = checking
        if pending is not None:
            take(pending)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - cpu_started
    cpu += children.ru_utime + children.ru_stime
    cpu -= children_before.ru_utime + children_before.ru_stime
    return ok, bad, cpu


def lookups_per_domain(sets) -> int:
    """Distinct name/type pairs of one domain's records, plus this server's A and AAAA."""
    return len({(r["name"].lower(), r["type"]) for r in sets[0]}) + 2 if sets else 0


def timed(label: str, sets, concurrency: int, processes: int, port: int, scale: float = 1.0):
    started = time.perf_counter()
    if RESOLVER == "wire" and concurrency > 1:
        ok, bad, cpu = check_all_way(sets, concurrency, processes, port)
    else:  # one domain at a time, or dnspython's resolver: checks.check_domains directly
        cpu_started = time.process_time()
        results = run_checks(sets, concurrency)
        cpu = time.process_time() - cpu_started
        ok = sum(all(r[0] == "ok" for r in domain) for domain in results)
        bad = next((d for d in results if not all(r[0] == "ok" for r in d)), None)
    elapsed = time.perf_counter() - started
    lookups = len(sets) * lookups_per_domain(sets)
    note = f" -> {elapsed * scale:.1f} s for {int(len(sets) * scale):,}" if scale != 1 else ""
    print(
        f"{label}: {len(sets):,} domains in {elapsed:.1f} s ({len(sets) / elapsed:,.0f} "
        f"domains/s, ~{lookups / elapsed:,.0f} lookups/s), {ok:,} all ok{note}; "
        f"{cpu:.1f} CPU s ({lookups / cpu:,.0f} lookups per CPU s), "
        f"load {os.getloadavg()[0]:.1f}"
    )
    if bad is not None:
        print("  first domain not all ok:", [r for r in bad if r[0] != "ok"][:3])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--sequential", type=int, default=500, help="0: skip")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--resolver", choices=("wire", "dnspython"), default="wire")
    args = parser.parse_args()
    global RESOLVER
    RESOLVER = args.resolver

    configure(0)  # Django first: records.py and checks.py are app modules
    sets = record_sets(args.domains)
    server, port = start_server(sets)
    from django.conf import settings

    settings.MAILADMIN_DNS_NAMESERVERS = [("127.0.0.1", port)]
    os.environ["MAILADMIN_DNS_NAMESERVERS"] = f"127.0.0.1:{port}"
    print(
        f"{os.cpu_count()} CPUs; DNS server on 127.0.0.1:{port}; "
        f"{lookups_per_domain(sets)} lookups per domain; resolver {RESOLVER}"
    )
    try:
        if args.sequential:
            sample = sets[: args.sequential]
            timed("sequential", sample, 1, 1, port, scale=len(sets) / len(sample))
        timed(
            f"concurrent ({args.concurrency} at a time, {args.processes} process(es))",
            sets,
            args.concurrency,
            args.processes,
            port,
        )
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
