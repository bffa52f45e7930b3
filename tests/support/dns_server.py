"""A live DNS server on loopback serving zones given as Python dicts.

    zones = {
        "example.test": {
            "MX": [(10, "mx.example.test.")],
            "TXT": ["v=spf1 -all"],
            "A": ["127.0.0.1"],
        },
        "broken.test": "SERVFAIL",      # answer SERVFAIL for every query of this name
        "slow.test": "TIMEOUT",         # never answer (resolver timeouts)
    }

Names not in `zones` get NXDOMAIN; a known name without the asked type gets NOERROR with an
empty answer (NoAnswer). Zones can be changed while the server runs (`server.zones[...]`).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, SRV, TXT, A, DNSRecord

TTL = 60


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
    if rtype == "SRV":
        priority, weight, port, target = value
        return SRV(priority, weight, port, target)
    raise ValueError(f"unsupported record type {rtype}")


class DnsServer:
    def __init__(self, zones: dict[str, Any] | None = None) -> None:
        self.zones: dict[str, Any] = {k.rstrip(".").lower(): v for k, v in (zones or {}).items()}
        self.queries: list[tuple[str, str]] = []
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind(("127.0.0.1", 0))
        self.port = self._udp.getsockname()[1]
        self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._tcp.bind(("127.0.0.1", self.port))
        self._tcp.listen(16)
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
        self._stop.set()
        self._udp.close()
        self._tcp.close()

    def answer(self, data: bytes) -> bytes | None:
        request = DNSRecord.parse(data)
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.queries.append((qname, qtype))
        reply = request.reply()
        zone = self.zones.get(qname)
        if zone == "TIMEOUT":
            return None
        if zone == "SERVFAIL":
            reply.header.rcode = RCODE.SERVFAIL
        elif zone is None:
            reply.header.rcode = RCODE.NXDOMAIN
        else:
            for value in zone.get(qtype, []):
                reply.add_answer(
                    RR(request.q.qname, QTYPE.reverse[qtype], ttl=TTL, rdata=_rdata(qtype, value))
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
                    if response is not None:
                        conn.sendall(len(response).to_bytes(2, "big") + response)
                except Exception:  # noqa: S112 - one bad client must not stop the server
                    continue
