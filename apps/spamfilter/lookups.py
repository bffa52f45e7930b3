"""DNS for one scan: every name/type asked once, all of it under one deadline, answers
shared between scans for a short while.

A scan needs a dozen lookups (SPF, DKIM keys, DMARC, PTR, the HELO and From hosts). The
ones known up front are asked at once (`prefetch`); the rest (SPF includes, PTR targets)
are asked as the evaluation reaches them. A lookup past the deadline is not sent: it is
a temporary error, so a silent server costs one timeout per scan, never one per record.

The queries go out through mailadmin.dns.WireResolver (the DNS check's lean stub
resolver: real wire format, dnspython's rdata) on one event loop thread per process;
the scan, whose consumers (pyspf, dkimpy) are synchronous, waits on its futures. A
blocking dnspython resolve costs ~0.2 ms of CPU a query and needed a thread each to ask
in parallel; the wire resolver ~0.05 ms, with no thread per query.

Answers (including "does not exist") are kept process-wide for min(TTL,
MAILADMIN_SPAM_DNS_CACHE_SECONDS), keyed by the configured nameservers; failures are
kept only for the scan that saw them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.resolver
import dns.reversename
from django.conf import settings

from mailadmin.dns import WireResolver, make_async_resolver

FOUND, NONE, ERROR = "found", "none", "error"
CACHE_SIZE = 20_000
_cache: OrderedDict[tuple, tuple[float, Answer]] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Answer:
    status: str  # FOUND, NONE (NXDOMAIN / no record of the type) or ERROR (temporary)
    values: tuple[Any, ...] = ()  # strings (TXT joined, names without the final dot), MX pairs
    detail: str = ""

    @property
    def temporary(self) -> bool:
        return self.status == ERROR


class _Loop:
    """This process's DNS event loop thread and its resolver (threads do not survive a
    fork: a child starts its own). The resolver is made again when the configured
    nameservers or timeout change (tests), the old one's sockets closed."""

    _by_pid: dict[int, _Loop] = {}
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.key: tuple | None = None
        self.resolver: WireResolver | None = None
        thread = threading.Thread(target=self.loop.run_forever, name="spam-dns", daemon=True)
        thread.start()

    @classmethod
    def current(cls) -> _Loop:
        pid = os.getpid()
        with cls._lock:
            found = cls._by_pid.get(pid)
            if found is None:
                found = cls._by_pid[pid] = cls()
            return found

    def ask(self, name: str, rtype: str, lifetime: float) -> concurrent.futures.Future:
        key = (tuple(settings.MAILADMIN_DNS_NAMESERVERS or ()), settings.MAILADMIN_DNS_TIMEOUT)
        with self._lock:
            if key != self.key:
                old, self.key, self.resolver = self.resolver, key, make_async_resolver()
                if old is not None:
                    self.loop.call_soon_threadsafe(old.close)
            resolver = self.resolver
        return asyncio.run_coroutine_threadsafe(
            resolver.resolve(name + ".", rtype, lifetime=lifetime), self.loop
        )


def cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


def _values(rtype: str, answer: Any) -> tuple[Any, ...]:
    if rtype == "TXT":
        return tuple(b"".join(r.strings).decode("utf-8", "replace") for r in answer)
    if rtype == "MX":
        return tuple((r.preference, r.exchange.to_text(True).lower()) for r in answer)
    if rtype in ("PTR", "CNAME"):
        return tuple(r.target.to_text(True).lower() for r in answer)
    return tuple(r.to_text() for r in answer)


def _not_a_name(name: str) -> bool:
    return not name or len(name) > 253 or any(not 0 < len(p) < 64 for p in name.split("."))


class ScanLookups:
    """The lookups of one scan (thread-safe, though a scan asks from one thread)."""

    def __init__(self, *, deadline: float | None = None) -> None:
        self.deadline_seconds = (
            settings.MAILADMIN_SPAM_DNS_DEADLINE if deadline is None else deadline
        )
        self.deadline_at = time.monotonic() + self.deadline_seconds
        self._seen: dict[tuple[str, str], Answer] = {}
        self._lock = threading.Lock()
        self._nameservers = tuple(settings.MAILADMIN_DNS_NAMESERVERS or ())
        self._asking: dict[tuple[str, str], concurrent.futures.Future] = {}  # prefetched
        self.queries = 0

    def remaining(self) -> float:
        return self.deadline_at - time.monotonic()

    def prefetch(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Ask these at once and wait for them (never past the deadline)."""
        todo = [(_norm(n), t) for n, t in dict.fromkeys(wanted)]
        todo = [(n, t) for n, t in todo if not _not_a_name(n) and self._known(n, t) is None]
        lifetime = min(settings.MAILADMIN_DNS_TIMEOUT, self.remaining())
        if len(todo) > 1 and lifetime > 0:
            with self._lock:
                for key in todo:
                    if key not in self._asking:
                        self._asking[key] = _Loop.current().ask(*key, lifetime)
        for name, rtype in todo:
            self.get(name, rtype)

    def _known(self, name: str, rtype: str) -> Answer | None:
        key = (_norm(name), rtype)
        with self._lock:
            if key in self._seen:
                return self._seen[key]
        cached = _cache_get((self._nameservers, *key))
        if cached is not None:
            with self._lock:
                self._seen[key] = cached
        return cached

    def get(self, name: str, rtype: str) -> Answer:
        name = _norm(name)
        if _not_a_name(name):
            return Answer(NONE, detail=f"{name!r} is not a DNS name")
        known = self._known(name, rtype)
        if known is not None:
            return known
        with self._lock:
            asking = self._asking.pop((name, rtype), None)
        lifetime = min(settings.MAILADMIN_DNS_TIMEOUT, self.remaining())
        if asking is None and lifetime <= 0:
            answer = Answer(
                ERROR,
                detail=f"{name} {rtype} not asked: the scan's DNS deadline of "
                f"{self.deadline_seconds:g}s passed",
            )
        else:
            if asking is None:
                asking = _Loop.current().ask(name, rtype, lifetime)
            answer, ttl = self._answer(name, rtype, asking)
            if answer.status != ERROR:
                _cache_put((self._nameservers, name, rtype), answer, ttl)
        with self._lock:
            self._seen.setdefault((name, rtype), answer)
            return self._seen[(name, rtype)]

    def _answer(
        self, name: str, rtype: str, asking: concurrent.futures.Future
    ) -> tuple[Answer, float]:
        self.queries += 1
        negative_ttl = min(60.0, settings.MAILADMIN_SPAM_DNS_CACHE_SECONDS)
        try:
            # The resolver keeps to the lifetime it was given; the wait's own bound is a
            # backstop for an event loop too busy to say so.
            result = asking.result(timeout=max(self.remaining(), 0) + 1.0)
        except dns.resolver.NXDOMAIN:
            return Answer(NONE, detail=f"{name} does not exist"), negative_ttl
        except dns.resolver.NoAnswer:
            return Answer(NONE, detail=f"no {rtype} record at {name}"), negative_ttl
        except (dns.exception.Timeout, concurrent.futures.TimeoutError):
            asking.cancel()
            return Answer(ERROR, detail=f"timeout asking {name} {rtype}"), 0
        except (dns.exception.DNSException, OSError) as exc:
            text = str(exc) or type(exc).__name__
            return Answer(ERROR, detail=f"lookup of {name} {rtype} failed: {text}"[:300]), 0
        ttl = min(float(result.ttl), settings.MAILADMIN_SPAM_DNS_CACHE_SECONDS)
        return Answer(FOUND, _values(rtype, result)), ttl

    # --- shapes the libraries want ------------------------------------------------------

    def addresses(self, name: str) -> Answer:
        """A and AAAA together: FOUND with any address, ERROR if either failed and none found."""
        self.prefetch([(name, "A"), (name, "AAAA")])
        a, aaaa = self.get(name, "A"), self.get(name, "AAAA")
        values = a.values + aaaa.values
        if values:
            return Answer(FOUND, values)
        if a.temporary or aaaa.temporary:
            return Answer(ERROR, detail=(a if a.temporary else aaaa).detail)
        return Answer(NONE, detail=a.detail)

    def ptr(self, ip: str) -> Answer:
        return self.get(dns.reversename.from_address(ip).to_text(True), "PTR")


def reverse_name(ip: str) -> str:
    return dns.reversename.from_address(ip).to_text(True)


def _norm(name: str) -> str:
    return (name or "").strip().rstrip(".").lower()


def _cache_get(key: tuple) -> Answer | None:
    with _cache_lock:
        entry = _cache.get(key)
        if entry is None:
            return None
        expires, answer = entry
        if expires < time.monotonic():
            del _cache[key]
            return None
        return answer


def _cache_put(key: tuple, answer: Answer, ttl: float) -> None:
    if ttl <= 0:
        return
    with _cache_lock:
        _cache[key] = (time.monotonic() + ttl, answer)
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
