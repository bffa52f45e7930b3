"""A live DNS server on loopback serving zones given as Python dicts.

    zones = {
        "example.test": {
            "MX": [(10, "mx.example.test.")],
            "TXT": ["v=spf1 -all"],
            "A": ["127.0.0.1"],
        },
        "broken.test": "SERVFAIL",      # answer SERVFAIL for every query of this name
        "slow.test": "TIMEOUT",         # never answer (resolver timeouts)
        "www.example.test": {"CNAME": ["example.test."]},  # followed, like a recursor
        "_25._tcp.mx.example.test": {"TLSA": [(3, 1, 1, "ab12...")]},  # data in hex
        "1.2.0.192.in-addr.arpa": {"PTR": ["mail.example.test."]},
    }

`server.authenticated.add(name)` sets the AD bit on answers for that name (DANE tests).
Names not in `zones` get NXDOMAIN; a known name without the asked type gets NOERROR with an
empty answer (NoAnswer). Zones can be changed while the server runs (`server.zones[...]`).
`server.udp_limit = 512` makes UDP answers larger than that truncated (TC set, no records),
as a server does for a client without EDNS; TCP answers are whole.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from typing import Any

from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, SRV, TLSA, TXT, A, DNSRecord

TTL = 60
# How many fresh ports to try before giving up: each try fails only if another process took
# the UDP port between our TCP bind and UDP bind, which is rare.
BIND_ATTEMPTS = 20


def _rdata(rtype: str, value: Any):
    if rtype == "A":
        return A(value)
    if rtype == "AAAA":
        return AAAA(value)
    if rtype == "MX":
        preference, exchange = value
        return MX(exchange, preference)
    if rtype == "TXT":
        text = value if isinstance(value, str) else "".join(value)
        chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
        return TXT(chunks)
    if rtype == "CNAME":
        return CNAME(value)
    if rtype == "PTR":
        return PTR(value)
    if rtype == "SRV":
        priority, weight, port, target = value
        return SRV(priority, weight, port, target)
    if rtype == "TLSA":
        usage, selector, mtype, data = value
        return TLSA(usage, selector, mtype, bytes.fromhex(data))
    raise ValueError(f"unsupported record type {rtype}")


def _bind_pair(host: str, *, first_port: int = 0) -> tuple[socket.socket, socket.socket]:
    """A listening TCP socket and a UDP socket on the same free port.

    The kernel picks a port free for TCP (port 0); the UDP port of that number may still be
    taken by another process, so on EADDRINUSE both are closed and a new port is tried, a
    bounded number of times. `first_port` is tried first (tests use it to force a clash).
    """
    port = first_port
    for _ in range(BIND_ATTEMPTS):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            tcp.bind((host, port))
            udp.bind((host, tcp.getsockname()[1]))
        except OSError as exc:
            tcp.close()
            udp.close()
            if exc.errno != errno.EADDRINUSE:
                raise
            port = 0
            continue
        tcp.listen(16)
        return tcp, udp
    raise OSError(errno.EADDRINUSE, f"no port free for both TCP and UDP in {BIND_ATTEMPTS} tries")


class DnsServer:
    def __init__(self, zones: dict[str, Any] | None = None) -> None:
        self.zones: dict[str, Any] = {k.rstrip(".").lower(): v for k, v in (zones or {}).items()}
        self.queries: list[tuple[str, str]] = []
        self.tcp_queries: list[tuple[str, str]] = []
        self.udp_limit: int | None = None
        # Names answered with the AD bit set, as a validating resolver does for data it
        # proved with DNSSEC. The records are not signed: this stands in for the resolver.
        self.authenticated: set[str] = set()
        self.ttls: dict[str, int] = {}  # a name's records' TTL, else TTL
        self._tcp, self._udp = _bind_pair("127.0.0.1")
        self.port = self._tcp.getsockname()[1]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._serve_udp, daemon=True),
            threading.Thread(target=self._serve_tcp, daemon=True),
        ]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set_zone(self, name: str, value: Any) -> None:
        self.zones[name.rstrip(".").lower()] = value

    def start(self) -> DnsServer:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port. shutdown() wakes the threads blocked in accept()
        and recvfrom(); a bare close() would leave them holding the port open."""
        self._stop.set()
        for sock in (self._udp, self._tcp):
            # An unconnected socket may answer ENOTCONN, yet the blocked thread still wakes.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=5)

    def answer(self, data: bytes) -> bytes | None:
        request = DNSRecord.parse(data)
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.queries.append((qname, qtype))
        reply = request.reply()
        # reply() copies the question's flags: AD only where a test says it was proved
        reply.header.ad = 1 if qname in self.authenticated else 0
        zone = self.zones.get(qname)
        if zone == "TIMEOUT":
            return None
        if zone == "SERVFAIL":
            reply.header.rcode = RCODE.SERVFAIL
        elif zone is None:
            reply.header.rcode = RCODE.NXDOMAIN
        else:
            owner = request.q.qname
            # A recursive resolver answers a name that is an alias with the CNAME chain and
            # the target's records (RFC 1034 3.6.2); a few hops at most, as loops end there.
            for _ in range(8):
                aliases = zone.get("CNAME") if isinstance(zone, dict) else None
                if qtype == "CNAME" or not aliases:
                    break
                ttl = self.ttls.get(str(owner).rstrip(".").lower(), TTL)
                reply.add_answer(RR(owner, QTYPE.CNAME, ttl=ttl, rdata=_rdata("CNAME", aliases[0])))
                owner = aliases[0]
                zone = self.zones.get(owner.rstrip(".").lower())
            if isinstance(zone, dict):
                ttl = self.ttls.get(str(owner).rstrip(".").lower(), TTL)
                for value in zone.get(qtype, []):
                    reply.add_answer(
                        RR(owner, QTYPE.reverse[qtype], ttl=ttl, rdata=_rdata(qtype, value))
                    )
        return reply.pack()

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._udp.recvfrom(4096)
            except OSError:
                return
            try:
                response = self.answer(data)
            except Exception:  # noqa: S112 - a malformed query gets no answer, like a real server
                continue
            if response is not None:
                if self.udp_limit is not None and len(response) > self.udp_limit:
                    truncated = DNSRecord.parse(data).reply()
                    truncated.header.tc = 1
                    response = truncated.pack()
                self._udp.sendto(response, peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._tcp.accept()
            except OSError:
                return
            with conn:
                try:
                    length = int.from_bytes(conn.recv(2), "big")
                    data = b""
                    while len(data) < length:
                        chunk = conn.recv(length - len(data))
                        if not chunk:
                            break
                        data += chunk
                    response = self.answer(data)
                    self.tcp_queries.append(self.queries[-1])
                    if response is not None:
                        conn.sendall(len(response).to_bytes(2, "big") + response)
                except Exception:  # noqa: S112 - one bad client must not stop the server
                    continue
