"""Talking to remote MX hosts: MX lookup (RFC 5321 5.1, RFC 7505) and one SMTP transaction
over a pooled connection.

Connection setup (TCP, greeting, EHLO, STARTTLS) is where outbound time goes, so each
worker process keeps the connections it opened, keyed by host:port, and reuses them for the
next message to the same MX until they sit idle too long.
"""

from __future__ import annotations

import itertools
import logging
import re
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass, field

import dns.exception
import dns.resolver
from django.conf import settings

from mailadmin.dns import make_resolver

log = logging.getLogger(__name__)


class TemporaryFailure(Exception):
    """Worth trying again later (DNS server failure, nobody answering)."""


class PermanentFailure(Exception):
    """Never deliverable: the domain does not exist or accepts no mail (null MX)."""

    def __init__(self, message: str, *, code: int = 550, status: str = "5.1.2") -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class Exchange:
    preference: int
    host: str
    addresses: tuple[str, ...]


_mx_cache: dict[str, tuple[float, list[Exchange]]] = {}
_cache_lock = threading.Lock()
MX_CACHE_SECONDS = 60.0


def _addresses(resolver: dns.resolver.Resolver, host: str) -> tuple[str, ...]:
    found: list[str] = []
    failures = 0
    for rtype in ("A", "AAAA"):
        try:
            found += [r.to_text() for r in resolver.resolve(host, rtype)]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout):
            failures += 1
    if not found and failures:
        raise TemporaryFailure(f"DNS lookup of {host} failed")
    return tuple(found)


def lookup_mx(domain: str) -> list[Exchange]:
    """The hosts to try for `domain`, best preference first.

    No MX record → the domain itself (implicit MX); a null MX ("0 .") → PermanentFailure;
    a domain that does not exist → PermanentFailure; a DNS failure → TemporaryFailure.
    """
    now = time.monotonic()
    with _cache_lock:
        cached = _mx_cache.get(domain)
        if cached and cached[0] > now:
            return cached[1]
    resolver = make_resolver()
    try:
        answer = resolver.resolve(domain, "MX")
        records = sorted((r.preference, r.exchange.to_text().rstrip(".")) for r in answer)
    except dns.resolver.NXDOMAIN:
        raise PermanentFailure(
            f"Host or domain name not found: {domain}", code=550, status="5.1.2"
        ) from None
    except dns.resolver.NoAnswer:
        records = [(0, domain)]  # implicit MX
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise TemporaryFailure(f"MX lookup of {domain} failed: {exc}") from exc
    if any(host in ("", ".") for _, host in records):
        raise PermanentFailure(
            f"Domain {domain} does not accept mail (null MX)", code=556, status="5.1.10"
        )
    exchanges = []
    for preference, host in records:
        addresses = _addresses(resolver, host)
        if addresses:
            exchanges.append(Exchange(preference, host, addresses))
    if not exchanges:
        if records == [(0, domain)]:
            raise PermanentFailure(f"Host or domain name not found: {domain}")
        raise TemporaryFailure(f"No address for any MX host of {domain}")
    with _cache_lock:
        _mx_cache[domain] = (now + MX_CACHE_SECONDS, exchanges)
    return exchanges


def clear_mx_cache() -> None:
    with _cache_lock:
        _mx_cache.clear()


# --- the connection pool --------------------------------------------------------------


_sessions = itertools.count(1)


@dataclass
class Connection:
    client: smtplib.SMTP
    tls: bool
    last_used: float = field(default_factory=time.monotonic)
    # This process's number for the session (TLS-RPT counts sessions, not messages).
    session: int = field(default_factory=lambda: next(_sessions))
    # Why TLS is off, as an RFC 8460 result type (for our TLS-RPT reports), and the error.
    tls_failure: str = ""
    tls_detail: str = ""


class Pool:
    """Open connections by host:port, each used by one delivery at a time."""

    def __init__(self) -> None:
        self._idle: dict[str, list[Connection]] = {}
        self._lock = threading.Lock()

    def take(self, host: str, port: int) -> Connection | None:
        key = f"{host}:{port}"
        idle_limit = settings.MAILADMIN_QUEUE_POOL_IDLE_SECONDS
        now = time.monotonic()
        with self._lock:
            stack = self._idle.get(key, [])
            while stack:
                conn = stack.pop()
                if now - conn.last_used < idle_limit:
                    return conn
                _close(conn)
        return None

    def give_back(self, host: str, port: int, conn: Connection) -> None:
        conn.last_used = time.monotonic()
        with self._lock:
            self._idle.setdefault(f"{host}:{port}", []).append(conn)

    def close_all(self) -> None:
        with self._lock:
            for stack in self._idle.values():
                for conn in stack:
                    _close(conn)
            self._idle.clear()

    def __len__(self) -> int:
        with self._lock:
            return sum(len(stack) for stack in self._idle.values())


pool = Pool()


def _close(conn: Connection) -> None:
    try:
        conn.client.quit()
    except (smtplib.SMTPException, OSError):
        conn.client.close()


def _tls_context() -> ssl.SSLContext:
    # Opportunistic TLS (RFC 7435): encrypt when offered, accept any certificate for now.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _open(
    host: str, port: int, server_name: str, *, try_tls: bool = True, failure: tuple = ("", "")
) -> Connection:
    """Connect, EHLO, and STARTTLS when offered. TLS is opportunistic (RFC 7435): when the
    handshake fails, the connection is opened again in plain text, as other MTAs do."""
    timeout = settings.MAILADMIN_QUEUE_SMTP_TIMEOUT
    client = smtplib.SMTP(timeout=timeout, local_hostname=settings.MAILADMIN_HOSTNAME)
    # STARTTLS names the MX host (SNI); smtplib takes it from the host it was created with.
    client._host = server_name
    try:
        code, message = client.connect(host, port)
        if code != 220:
            raise smtplib.SMTPConnectError(code, message)
        client.ehlo()
        tls = False
        if try_tls and client.has_extn("starttls"):
            try:
                client.starttls(context=_tls_context())
            except (ssl.SSLError, smtplib.SMTPException, OSError) as exc:
                log.info("STARTTLS with %s failed (%s): sending without TLS", server_name, exc)
                client.close()
                kind = (
                    "certificate-not-trusted"
                    if isinstance(exc, ssl.SSLCertVerificationError)
                    else "validation-failure"
                )
                detail = f"STARTTLS failed: {exc or type(exc).__name__}"
                return _open(host, port, server_name, try_tls=False, failure=(kind, detail))
            client.ehlo()
            tls = True
        elif try_tls:
            failure = ("starttls-not-supported", "")
    except BaseException:
        client.close()
        raise
    return Connection(client, tls, tls_failure=failure[0], tls_detail=failure[1][:1024])


@dataclass
class Reply:
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


@dataclass
class TransactionResult:
    """Per-recipient replies (RCPT, or DATA for those RCPT accepted) and whether TLS was on.
    `error` is set when the whole transaction failed before any recipient got an answer."""

    replies: dict[str, Reply]
    tls: bool
    host: str
    tls_failure: str = ""  # see Connection
    tls_detail: str = ""
    session: int = 0  # see Connection


def _reply(code: int, text: bytes | str) -> Reply:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return Reply(code, " ".join(text.split()))


def send(
    host: str,
    port: int,
    *,
    mail_from: str,
    recipients: list[str],
    data: bytes,
    server_name: str | None = None,
    require=None,
):
    """One SMTP transaction on a pooled (or new) connection to host:port (an address;
    `server_name` is the MX host's name, for TLS). `require`: a tls_policy.Requirement
    (DANE or MTA-STS) the connection must meet, else tls_policy.PolicyFailure.

    Returns a TransactionResult; raises OSError/SMTPException when the connection failed
    before recipients had answers (the caller tries the next MX). A reused connection that
    turns out closed is replaced once.
    """
    pooled = host if require is None else f"{host}#{require.key}"  # kept apart by policy
    for attempt in (1, 2):
        conn = pool.take(pooled, port)
        reused = conn is not None
        if conn is None and require is not None:
            from apps.queue import tls_policy

            conn = tls_policy.open_connection(host, port, server_name or host, require)
        elif conn is None:
            conn = _open(host, port, server_name or host)
        try:
            result = _transaction(conn, host, mail_from=mail_from, recipients=recipients, data=data)
        except (TimeoutError, smtplib.SMTPServerDisconnected, ConnectionError) as exc:
            conn.client.close()
            if reused and attempt == 1:
                log.debug("pooled connection to %s:%s was gone (%s); reconnecting", host, port, exc)
                continue
            raise
        except BaseException:
            conn.client.close()
            raise
        pool.give_back(pooled, port, conn)
        return result
    raise AssertionError("unreachable")


def _result(conn: Connection, host: str, replies: dict[str, Reply]) -> TransactionResult:
    return TransactionResult(
        replies, conn.tls, host, conn.tls_failure, conn.tls_detail, session=conn.session
    )


LINE_END = re.compile(rb"\r\n|\n|\r")


def _transaction(
    conn: Connection, host: str, *, mail_from: str, recipients: list[str], data: bytes
) -> TransactionResult:
    client = conn.client
    # Every line ends in CRLF on the wire (RFC 5321 2.3.8), before dots are stuffed: a bare
    # CR or LF passed on would let a peer that takes it for a line end read "<CR>.<CR><LF>"
    # as the end of DATA and the rest as commands of ours (SMTP smuggling). smtplib only
    # does this for str data.
    data = LINE_END.sub(b"\r\n", data)
    options = []
    if client.has_extn("size"):
        options.append(f"SIZE={len(data)}")
    if client.has_extn("8bitmime") and not data[:65536].isascii():
        options.append("BODY=8BITMIME")
    if client.has_extn("pipelining"):
        return _pipelined(conn, host, mail_from=mail_from, options=options,
                          recipients=recipients, data=data)  # fmt: skip
    code, text = client.mail(mail_from, options)
    if code != 250:
        client.rset()
        reply = _reply(code, text)
        return _result(conn, host, {r: reply for r in recipients})
    replies: dict[str, Reply] = {}
    accepted = []
    for rcpt in recipients:
        code, text = client.rcpt(rcpt)
        replies[rcpt] = _reply(code, text)
        if code in (250, 251):
            accepted.append(rcpt)
    if not accepted:
        client.rset()
        return _result(conn, host, replies)
    try:
        code, text = client.data(data)
    except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354)
        code, text = exc.smtp_code, exc.smtp_error
    reply = _reply(code, text)
    if code != 250:
        client.rset()
    for rcpt in accepted:
        replies[rcpt] = reply
    return _result(conn, host, replies)


def _pipelined(
    conn: Connection,
    host: str,
    *,
    mail_from: str,
    options: list[str],
    recipients: list[str],
    data: bytes,
) -> TransactionResult:
    """PIPELINING (RFC 2920): MAIL, every RCPT and DATA in one write, their replies read in
    order, then the body: two round trips per message instead of three plus one per
    recipient. smtplib does not pipeline, so the commands are written with its own
    `send`/`getreply` (the same quoting as its `mail`/`rcpt`)."""
    client = conn.client
    optionlist = "".join(f" {o}" for o in options)
    commands = [f"MAIL FROM:{smtplib.quoteaddr(mail_from)}{optionlist}\r\n"]
    commands += [f"RCPT TO:{smtplib.quoteaddr(r)}\r\n" for r in recipients]
    commands.append("DATA\r\n")
    client.send("".join(commands))
    mail_code, mail_text = client.getreply()
    replies: dict[str, Reply] = {}
    accepted = []
    for rcpt in recipients:
        code, text = client.getreply()
        replies[rcpt] = _reply(code, text)
        if code in (250, 251) and mail_code == 250:
            accepted.append(rcpt)
    code, text = client.getreply()  # to DATA
    if code == 354 and not accepted:  # a server that should have refused DATA: send nothing
        client.send(b".\r\n")
        client.getreply()
    if mail_code != 250:
        reply = _reply(mail_code, mail_text)
        replies = {r: reply for r in recipients}
    if not accepted or code != 354:
        if accepted:  # DATA itself refused
            reply = _reply(code, text)
            replies.update((r, reply) for r in accepted)
        client.rset()
        return _result(conn, host, replies)
    body = smtplib._quote_periods(data)
    if body[-2:] != b"\r\n":
        body += b"\r\n"
    client.send(body + b".\r\n")
    code, text = client.getreply()
    reply = _reply(code, text)
    if code != 250:
        client.rset()
    for rcpt in accepted:
        replies[rcpt] = reply
    return _result(conn, host, replies)
