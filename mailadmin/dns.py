"""The one place DNS resolvers are made: tests point MAILADMIN_DNS_NAMESERVERS at loopback.

`make_resolver` is dnspython's blocking resolver (pyspf's hook, anything synchronous).
`make_async_resolver` is `WireResolver`, a lean asyncio stub resolver for the DNS check,
which asks many thousands of names a minute: dnspython's own asyncio resolver spends ~0.8 ms
of CPU per query (a socket, a resolution object and a message object per query), which made
"Check all" CPU-bound at ~1,200 queries/s. WireResolver keeps the wire format real and the
answers dnspython's (`dns.message.from_wire`, `dns.resolver.Answer`, the same exceptions),
and drops the per-query machinery:

- queries are a pre-made header and EDNS0 OPT around the name: only the ID, the name and
  the type change;
- a few UDP sockets per event loop, opened on first use, each with a map of query ID to
  the future waiting for it (asyncio DatagramProtocol); an answer is accepted only from the
  nameserver asked, for the ID asked, with the question asked;
- truncated answers are asked again over TCP; SERVFAIL and other refusals try the next
  nameserver (then NoNameservers, listing each server's answer); no answer within
  `timeout` tries the next one, and `lifetime` ends the whole lookup (LifetimeTimeout).

Use it inside `async with resolver.session():` (the checks do) so its sockets are closed
when the last user is done; without a session they are closed with their event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import ipaddress
import os
import socket
import time
from collections.abc import AsyncIterator

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
from django.conf import settings

# Header after the ID: RD set, one question, no answers or authorities, one additional (OPT).
_HEADER_EDNS = b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01"
_HEADER_PLAIN = b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
# EDNS0 OPT: root owner, type 41, UDP payload 1232 (the DNS flag day size), no flags/options.
_OPT = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
_IN = b"\x00\x01"
SOCKETS_PER_FAMILY = 4  # queries spread over a few source ports, not one
# Lookups under way at once, per event loop: more only overflow the sockets' receive
# buffers while the loop is busy judging answers (lost answers cost a timeout). Waiting for
# a turn is not the server's silence: a lookup's timeout starts with its turn, but never
# runs past the `not_after` its caller gives (a DNS check's deadline).
MAX_IN_FLIGHT = 1024
RECEIVE_BUFFER = 4 * 1024 * 1024  # asked for; the kernel caps it at net.core.rmem_max
RETRANSMIT_AFTER = 2.0  # seconds without an answer before a UDP query is sent again


def _configure(resolver: dns.resolver.Resolver) -> None:
    nameservers = settings.MAILADMIN_DNS_NAMESERVERS
    if nameservers:
        resolver.nameservers = [host for host, _ in nameservers]
        ports = {port for _, port in nameservers}
        resolver.port = ports.pop() if len(ports) == 1 else 53
        resolver.nameserver_ports = {host: port for host, port in nameservers}
    resolver.lifetime = settings.MAILADMIN_DNS_TIMEOUT
    resolver.timeout = settings.MAILADMIN_DNS_TIMEOUT


def make_resolver() -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=not settings.MAILADMIN_DNS_NAMESERVERS)
    _configure(resolver)
    return resolver


def make_async_resolver() -> WireResolver:
    """The resolver for asyncio code (the DNS check runs its lookups concurrently)."""
    nameservers = list(settings.MAILADMIN_DNS_NAMESERVERS or [])
    if not nameservers:
        system = dns.resolver.Resolver(configure=True)
        nameservers = [(str(host), 53) for host in system.nameservers]
    return WireResolver(
        nameservers,
        timeout=settings.MAILADMIN_DNS_TIMEOUT,
        lifetime=settings.MAILADMIN_DNS_TIMEOUT,
    )


def make_dnspython_async_resolver() -> dns.asyncresolver.Resolver:
    """dnspython's own asyncio resolver, configured alike (the bench compares the two)."""
    resolver = dns.asyncresolver.Resolver(configure=not settings.MAILADMIN_DNS_NAMESERVERS)
    _configure(resolver)
    return resolver


def _address(host: str) -> str:
    try:
        return str(ipaddress.ip_address(str(host)))
    except ValueError:
        return str(host)


@functools.cache
def _rdtype(text: str) -> dns.rdatatype.RdataType:
    return dns.rdatatype.from_text(text)


def _qname_wire(name: str) -> bytes:
    """The wire form of an absolute name; plain ASCII names without escapes are packed by
    hand (the common case), anything else by dnspython."""
    text = name.rstrip(".")
    if text.isascii() and "\\" not in text:
        labels = text.split(".") if text else []
        if all(0 < len(label) < 64 for label in labels):
            wire = b"".join(bytes([len(label)]) + label.encode() for label in labels) + b"\x00"
            if len(wire) <= 255:
                return wire
    return dns.name.from_text(name).to_wire()


class _Udp(asyncio.DatagramProtocol):
    """One UDP socket: queries out, answers matched to their waiting future by ID."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, tuple[asyncio.Future, tuple, bytes]] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if len(data) < 12:
            return
        waiting = self.pending.get(int.from_bytes(data[:2], "big"))
        if waiting is None:
            return
        future, server, question = waiting
        if addr[:2] != server or future.done() or not _same_question(data, question):
            return  # not from the server asked, or not to this question: a late answer to
            # an earlier query that had the same ID (or a spoofed one), ignored
        future.set_result(data)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors on an unconnected socket name no query: the query times out."""

    def connection_lost(self, exc) -> None:
        for future, *_ in self.pending.values():
            if not future.done():
                future.set_exception(exc or ConnectionError("socket closed"))
        self.pending.clear()

    def new_id(self) -> int:
        while True:
            qid = int.from_bytes(os.urandom(2), "big")
            if qid not in self.pending:
                return qid


class _Turns:
    """A semaphore whose acquire gives up at a deadline. (asyncio.Semaphore of Python 3.11
    scans all its waiters on every acquire: quadratic with thousands of lookups waiting.)"""

    def __init__(self, count: int) -> None:
        self.free = count
        self.waiters: collections.deque[asyncio.Future] = collections.deque()

    async def acquire(self, not_after: float | None) -> bool:
        """True once it is this caller's turn, False if `not_after` came first."""
        if self.free > 0:
            self.free -= 1
            return True
        loop = asyncio.get_running_loop()
        turn = loop.create_future()
        self.waiters.append(turn)
        expiry = None
        if not_after is not None:
            expiry = loop.call_later(max(not_after - time.monotonic(), 0), _expire, turn)
        try:
            return bool(await turn)
        except asyncio.CancelledError:
            if turn.done() and turn.result():
                self.release()  # given the turn while being cancelled: pass it on
            raise
        finally:
            if expiry is not None:
                expiry.cancel()

    def release(self) -> None:
        while self.waiters:
            turn = self.waiters.popleft()
            if not turn.done():
                turn.set_result(True)  # the turn goes straight to the next waiter
                return
        self.free += 1


class _Sockets:
    """The UDP sockets of one event loop, by address family."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.by_family: dict[int, list[_Udp]] = {}
        self.opening: dict[int, asyncio.Future[list[_Udp]]] = {}
        self.turn = 0
        self.in_flight = _Turns(MAX_IN_FLIGHT)

    async def pick(self, family: int) -> _Udp:
        pool = self.by_family.get(family)
        if pool is None:
            # The first lookups of a run all arrive here at once: one opens the sockets,
            # the others wait for them (else each would open its own).
            opening = self.opening.get(family)
            if opening is None:
                opening = self.opening[family] = asyncio.ensure_future(self._open(family))
            pool = await asyncio.shield(opening)
        self.turn += 1
        return pool[self.turn % len(pool)]

    async def _open(self, family: int) -> list[_Udp]:
        local = ("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0)  # noqa: S104
        pool = []
        try:
            for _ in range(SOCKETS_PER_FAMILY):
                transport, protocol = await self.loop.create_datagram_endpoint(
                    _Udp, local_addr=local, family=family
                )
                pool.append(protocol)
                with contextlib.suppress(OSError):
                    transport.get_extra_info("socket").setsockopt(
                        socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER
                    )
        except BaseException:
            for protocol in pool:
                protocol.transport.close()
            self.opening.pop(family, None)
            raise
        self.by_family[family] = pool
        return pool

    def close(self) -> None:
        for pool in self.by_family.values():
            for protocol in pool:
                if protocol.transport is not None:
                    protocol.transport.close()
        self.by_family.clear()
        self.opening.clear()


class WireResolver:
    """A stub resolver for asyncio code: `await resolve(name, rtype, lifetime=)` gives a
    dns.resolver.Answer (CNAME chains followed, `canonical_name` set) or raises NXDOMAIN,
    NoAnswer, NoNameservers, YXDOMAIN or LifetimeTimeout, like dnspython's resolver."""

    def __init__(
        self, nameservers: list[tuple[str, int]], *, timeout: float, lifetime: float
    ) -> None:
        # addresses in the form answers come from (an IPv6 address has several spellings)
        self.nameservers = [(_address(host), int(port)) for host, port in nameservers]
        self.timeout = timeout
        self.lifetime = lifetime
        self._sockets: _Sockets | None = None
        self._users = 0

    # --- sockets ---------------------------------------------------------------------------

    def _loop_sockets(self) -> _Sockets:
        loop = asyncio.get_running_loop()
        if self._sockets is None or self._sockets.loop is not loop:
            self._sockets = _Sockets(loop)
        return self._sockets

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[WireResolver]:
        """Share the sockets between everything inside; closed when the last one ends."""
        self._users += 1
        try:
            yield self
        finally:
            self._users -= 1
            if self._users == 0:
                self.close()

    def close(self) -> None:
        """Close its sockets now (on their event loop); lookups under way fail."""
        if self._sockets is not None:
            self._sockets.close()
            self._sockets = None

    # --- one lookup -----------------------------------------------------------------------

    async def resolve(
        self,
        qname: str | dns.name.Name,
        rdtype: str = "A",
        *,
        lifetime: float | None = None,
        not_after: float | None = None,
    ) -> dns.resolver.Answer:
        """`lifetime` seconds from this lookup's turn (see MAX_IN_FLIGHT), and never past
        `not_after` (time.monotonic())."""
        in_flight = self._loop_sockets().in_flight
        if not await in_flight.acquire(not_after):
            raise dns.resolver.LifetimeTimeout(timeout=0.0, errors=[])
        try:
            if not_after is not None:
                limit = not_after - time.monotonic()
                lifetime = limit if lifetime is None else min(lifetime, limit)
            return await self._resolve(qname, rdtype, lifetime)
        finally:
            in_flight.release()

    async def _resolve(
        self, qname: str | dns.name.Name, rdtype: str, lifetime: float | None
    ) -> dns.resolver.Answer:
        name = qname.to_text() if isinstance(qname, dns.name.Name) else qname
        if not name.endswith("."):
            name += "."
        rdtype_value = _rdtype(rdtype) if isinstance(rdtype, str) else rdtype
        question = _qname_wire(name) + int(rdtype_value).to_bytes(2, "big") + _IN
        lifetime = self.lifetime if lifetime is None else lifetime
        started = time.monotonic()
        deadline = started + lifetime
        errors: list[tuple] = []
        servers = list(self.nameservers)
        edns = True
        while servers:
            for server in list(servers):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise dns.resolver.LifetimeTimeout(
                        timeout=time.monotonic() - started, errors=errors
                    )
                try:
                    data = await self._udp(server, question, edns, min(self.timeout, remaining))
                    if data is None:
                        continue  # no answer in time: the next server, or this one again
                    if data[2] & 0x02:  # TC: the answer did not fit, ask over TCP
                        data = await self._tcp(server, question, edns, deadline - time.monotonic())
                        if data[2] & 0x02:
                            raise dns.exception.FormError("truncated answer over TCP")
                    fast = _fast_answer(data, len(question), rdtype_value)
                    if fast is not None:
                        return fast
                    response = dns.message.from_wire(data)
                except TimeoutError:
                    continue
                except (OSError, EOFError, dns.exception.DNSException) as exc:
                    errors.append((server[0], False, server[1], exc, None))
                    servers.remove(server)
                    continue
                rcode = response.rcode()
                if rcode == dns.rcode.FORMERR and edns:
                    edns = False  # an old server that refuses EDNS: ask it plainly
                    errors.append((server[0], False, server[1], "FORMERR with EDNS", response))
                    continue
                if rcode == dns.rcode.NOERROR:
                    qname_obj = response.question[0].name
                    answer = dns.resolver.Answer(
                        qname_obj,
                        rdtype_value,
                        dns.rdataclass.IN,
                        response,
                        server[0],
                        server[1],
                    )
                    if answer.rrset is None:
                        raise dns.resolver.NoAnswer(response=response)
                    return answer
                if rcode == dns.rcode.NXDOMAIN:
                    qname_obj = response.question[0].name
                    raise dns.resolver.NXDOMAIN(qnames=[qname_obj], responses={qname_obj: response})
                if rcode == dns.rcode.YXDOMAIN:
                    raise dns.resolver.YXDOMAIN()
                errors.append((server[0], False, server[1], dns.rcode.to_text(rcode), response))
                servers.remove(server)
        request = dns.message.make_query(name, rdtype_value)
        raise dns.resolver.NoNameservers(request=request, errors=errors)

    async def _udp(
        self, server: tuple[str, int], question: bytes, edns: bool, timeout: float
    ) -> bytes | None:
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        udp = await self._loop_sockets().pick(family)
        qid = udp.new_id()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        udp.pending[qid] = (future, server, question)
        wire = qid.to_bytes(2, "big") + (
            _HEADER_EDNS + question + _OPT if edns else _HEADER_PLAIN + question
        )
        expiry = loop.call_later(timeout, _expire, future)
        resend = loop.call_later(RETRANSMIT_AFTER, _resend, future, udp, wire, server)
        try:
            udp.transport.sendto(wire, server)
            return await future  # None when it expired
        finally:
            expiry.cancel()
            resend.cancel()
            udp.pending.pop(qid, None)

    async def _tcp(
        self, server: tuple[str, int], question: bytes, edns: bool, timeout: float
    ) -> bytes:
        if timeout <= 0:
            raise TimeoutError
        qid = int.from_bytes(os.urandom(2), "big")
        wire = qid.to_bytes(2, "big") + (
            _HEADER_EDNS + question + _OPT if edns else _HEADER_PLAIN + question
        )

        async def exchange() -> bytes:
            reader, writer = await asyncio.open_connection(*server)
            try:
                writer.write(len(wire).to_bytes(2, "big") + wire)
                await writer.drain()
                length = int.from_bytes(await reader.readexactly(2), "big")
                data = await reader.readexactly(length)
            finally:
                writer.close()
            if data[:2] != wire[:2] or not _same_question(data, question):
                raise dns.exception.FormError("the TCP answer is not for the question asked")
            return data

        return await asyncio.wait_for(exchange(), timeout)


def _resend(future: asyncio.Future, udp: _Udp, wire: bytes, server: tuple) -> None:
    """Send an unanswered UDP query again (a datagram may be lost), once a second."""
    if future.done() or udp.transport is None or udp.transport.is_closing():
        return
    udp.transport.sendto(wire, server)
    loop = future.get_loop()
    handle = loop.call_later(RETRANSMIT_AFTER, _resend, future, udp, wire, server)
    future.add_done_callback(lambda _: handle.cancel())


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def _same_question(data: bytes, question: bytes) -> bool:
    """An answer (QR set) with one question, the one asked (the name in any case)."""
    end = 12 + len(question)
    return (
        len(data) >= end
        and data[2] & 0x80 == 0x80
        and data[4:6] == b"\x00\x01"
        and data[12 : end - 4].lower() == question[:-4].lower()
        and data[end - 4 : end] == question[-4:]
    )


class NameText(str):
    """A name as text (lower case, absolute) that answers to_text() like a dns.name.Name."""

    def to_text(self, omit_final_dot: bool = False) -> str:
        return self[:-1] if omit_final_dot and len(self) > 1 else str(self)


class WireAnswer:
    """The records answering a question (after any CNAME chain), as dnspython rdata: what
    dns.resolver.Answer offers the checks (iteration, `rrset`, `canonical_name`)."""

    __slots__ = ("rrset", "canonical_name", "ttl")

    def __init__(self, rrset: list, canonical_name: NameText, ttl: int) -> None:
        self.rrset = rrset
        self.canonical_name = canonical_name
        self.ttl = ttl  # the least TTL of the records and of the CNAMEs leading to them

    def __iter__(self):
        return iter(self.rrset)

    def __len__(self) -> int:
        return len(self.rrset)

    def __getitem__(self, index):
        return self.rrset[index]


MAX_CHAIN = 16  # CNAME hops followed in one answer, as dnspython's resolve_chaining


def _name_at(wire: bytes, offset: int) -> tuple[str, int]:
    """(the name at `offset` as lower-case text for comparing, the offset after it)."""
    labels = []
    end = None
    jumps = 0
    while True:
        length = wire[offset]
        if length == 0:
            offset += 1
            break
        if length >= 0xC0:  # a compression pointer
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | wire[offset + 1]
            jumps += 1
            if jumps > 127:
                raise ValueError("compression loop")
            continue
        if length > 63:
            raise ValueError("bad label length")
        labels.append(wire[offset + 1 : offset + 1 + length])
        offset += 1 + length
    return b".".join(labels).lower().decode("latin-1") + ".", end if end is not None else offset


def _fast_answer(data: bytes, question_length: int, rdtype: int) -> WireAnswer | None:
    """The common case read straight from the wire: NOERROR with the records asked for,
    possibly behind CNAMEs; each record's data parsed by dnspython. None for anything else
    (no records, NXDOMAIN, other rcodes, anything odd): then dnspython reads the whole
    message and says what it is."""
    if data[3] & 0x0F != 0:
        return None
    try:
        count = int.from_bytes(data[6:8], "big")
        offset = 12 + question_length
        records = []
        for _ in range(count):
            owner, offset = _name_at(data, offset)
            rtype = int.from_bytes(data[offset : offset + 2], "big")
            rclass = int.from_bytes(data[offset + 2 : offset + 4], "big")
            ttl = int.from_bytes(data[offset + 4 : offset + 8], "big") & 0x7FFFFFFF
            length = int.from_bytes(data[offset + 8 : offset + 10], "big")
            start = offset + 10
            offset = start + length
            if offset > len(data):
                return None
            if rclass == 1:
                records.append((owner, rtype, start, length, ttl))
        current, _ = _name_at(data, 12)
        canonical = NameText(current)
        least = 0x7FFFFFFF
        for _ in range(MAX_CHAIN):
            found = [r for r in records if r[0] == current and r[1] == rdtype]
            if found:
                rrset, seen = [], set()
                for _, _, start, length, ttl in found:
                    least = min(least, ttl)
                    raw = data[start : start + length]
                    if raw in seen:
                        continue
                    seen.add(raw)
                    rrset.append(dns.rdata.from_wire(1, rdtype, data, start, length))
                return WireAnswer(rrset, canonical, least)
            alias = next((r for r in records if r[0] == current and r[1] == 5), None)
            if alias is None or rdtype == 5:
                return None
            least = min(least, alias[4])
            current, _ = _name_at(data, alias[2])
            canonical = NameText(dns.name.from_wire(data, alias[2])[0].to_text())
        return None
    except (IndexError, ValueError, dns.exception.DNSException):
        return None
