"""The SMTP listeners' plumbing: the protocol class, the handlers' common part, and the
ways to run them (`serve` for the management command, `ListenerThread` for tests and
embedded use).

Each bind's name chooses its handler: "inbound" is the MX (apps.queue.smtp.inbound),
"submission" the authenticated submission service (apps.queue.smtp.submission).
"""

from __future__ import annotations

import asyncio
import binascii
import ipaddress
import logging
import re
import secrets
import socket
import ssl
import threading
from base64 import b64decode
from datetime import UTC, datetime

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session, TLSSetupException
from django.conf import settings

from apps.queue.smtp.dbpool import DbPool
from apps.queue.smtp.headers import (
    TlsInfo,
    header_end,
    line_ending,
    protocol_name,
    received_header,
)
from apps.queue.smtp.tls import server_context
from apps.telemetry.events import emit
from mailadmin.converters import digits

log = logging.getLogger(__name__)

TEMPORARY_ERROR = "451 4.3.0 Temporary server error, try again later"
SENDER_OK = "250 2.1.0 Sender OK"
RECIPIENT_OK = "250 2.1.5 Recipient OK"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
BAD_ADDRESS = "501 5.1.3 Bad recipient address syntax"
NEEDS_SMTPUTF8 = "553 5.6.7 Non-ASCII address needs SMTPUTF8"
NOT_UTF8 = "553 5.6.7 Address is not valid UTF-8"
MALFORMED_ADDRESS = "553 5.1.3 Malformed address"
# C0 controls and DEL: no address holds them (RFC 5321 4.1.2), and NUL cannot be stored
# in a PostgreSQL text column.
CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
HEADER_TOO_LARGE = "552 5.3.4 Message header too large"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections, try again later"
TOO_MANY_FROM_ADDRESS = "421 4.7.0 Too many connections from your address, try again later"
SIZE_EXCEEDED = "552 5.3.4 Message size exceeds fixed maximum message size"
# aiosmtpd's own replies, given enhanced status codes (RFC 3463) and standard texts.
STOCK_REPLIES = {
    "552 Error: message size exceeds fixed maximum message size": SIZE_EXCEEDED,
    "552 Error: Too much mail data": SIZE_EXCEEDED,
    "500 Line too long (see RFC5321 4.5.3.1.6)": (
        "500 5.5.2 Line too long (RFC 5321 4.5.3.1.6: at most 998 characters and CRLF)"
    ),
    "500 Command line too long": "500 5.5.2 Command line too long",
    "503 Error: need MAIL command": "503 5.5.1 Error: need MAIL command",
    "503 Error: need RCPT command": "503 5.5.1 Error: need RCPT command",
    "503 Error: nested MAIL command": "503 5.5.1 Error: nested MAIL command",
    "553 5.1.3 Error: malformed address": "553 5.1.3 Malformed address",
}
# The enhanced status code (RFC 3463) for a failure reply of aiosmtpd's own that has none
# ("501 Syntax: MAIL FROM: <address>", "555 MAIL FROM parameters not recognized", ...),
# by its basic code, so that every 4xx/5xx reply a client reads carries one as ours do.
ENHANCED_BY_CODE = {
    "421": "4.3.0",
    "450": "4.2.0",
    "451": "4.3.0",
    "452": "4.3.1",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "550": "5.0.0",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.0.0",
    "555": "5.5.4",
}
ENHANCED = re.compile(r"[245]\.\d{1,3}\.\d{1,3}(?:\s|$)")
# AUTH attempts on one connection (the lockout counts failures across connections).
AUTH_PER_CONNECTION = 10
UNLIMITED = 10**9


def with_enhanced_code(reply: str) -> str:
    """`reply` with the enhanced status code its basic code takes when a failure reply
    (4xx/5xx, one line) has none; anything else as it is."""
    code, separator, text = reply[:3], reply[3:4], reply[4:]
    enhanced = ENHANCED_BY_CODE.get(code)
    if enhanced is None or separator != " " or ENHANCED.match(text):
        return reply
    return f"{code} {enhanced} {text}"


def queue_id() -> str:
    """A short id naming one accepted transaction in replies, logs and Received."""
    return secrets.token_hex(6).upper()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def peer_ip(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


def address_encoding_error(address: str, *, smtputf8: bool) -> str | None:
    """RFC 6531: a non-ASCII address only in an SMTPUTF8 transaction, and valid UTF-8;
    no control characters in any address."""
    if CONTROLS.search(address):
        return MALFORMED_ADDRESS
    if address.isascii():
        return None
    if not smtputf8:
        return NEEDS_SMTPUTF8
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes kept as surrogates by aiosmtpd
        return NOT_UTF8
    return None


def connection_data(server: SMTP) -> dict:
    """The listener and both ends of a connection, for its first trace event."""
    local = server.transport.get_extra_info("sockname") if server.transport else None
    peer = server.session.peer if isinstance(server.session.peer, tuple) else ("", 0)
    return {
        "listenerId": "submission" if server.event_handler.offers_auth else "smtp",
        "localPort": local[1] if isinstance(local, tuple) and len(local) > 1 else 0,
        "remoteIp": str(peer[0]),
        "remotePort": peer[1] if len(peer) > 1 else 0,
    }


def tls_info(session: Session) -> TlsInfo | None:
    if not session.ssl:
        return None
    ssl_object = session.ssl.get("ssl_object")
    if ssl_object is None:
        return None
    cipher, _, bits = ssl_object.cipher() or ("unknown", "", 0)
    return TlsInfo(version=ssl_object.version() or "TLS", cipher=cipher, bits=bits or 0)


class MailEnvelope(Envelope):
    """aiosmtpd's envelope plus what the handlers learn at MAIL and RCPT time."""

    def __init__(self) -> None:
        super().__init__()
        self.declared_size = 0  # MAIL FROM SIZE=, 0 when not given
        # inbound: recipient address -> what it resolved to (a store Resolution)
        self.resolutions: dict = {}


class MailSession(Session):
    # aiosmtpd sets this deprecated property after every AUTH, logging a warning each
    # time; a plain attribute keeps the value quietly (we use `auth_data`).
    login_data = None
    trace_id = ""  # telemetry: this connection's trace


class Connections:
    """Open connections of one listener, in all and per client address (IPv6 by /64),
    counted on the event loop. Over a limit a client hears 421 and is disconnected: a
    message in DATA is held in memory, so the count bounds what clients can make us hold.
    """

    def __init__(self) -> None:
        self.total = 0
        self.by_address: dict[str, int] = {}

    def open(self, ip: str) -> str | None:
        """Count a new connection; a 421 reply instead when a limit is reached."""
        from apps.accounts.auth.login import throttle_address

        key = throttle_address(ip)
        if self.total >= settings.MAILADMIN_SMTP_MAX_CONNECTIONS:
            return TOO_MANY_CONNECTIONS
        if self.by_address.get(key, 0) >= settings.MAILADMIN_SMTP_MAX_CONNECTIONS_PER_IP:
            return TOO_MANY_FROM_ADDRESS
        self.total += 1
        self.by_address[key] = self.by_address.get(key, 0) + 1
        return None

    def close(self, ip: str) -> None:
        from apps.accounts.auth.login import throttle_address

        key = throttle_address(ip)
        self.total -= 1
        self.by_address[key] -= 1
        if not self.by_address[key]:
            del self.by_address[key]


class MailSMTP(SMTP):
    """aiosmtpd's SMTP with standard replies, our envelope, connection limits, and AUTH
    PLAIN/LOGIN whose credential check runs off the event loop (it hashes and reads the
    database)."""

    _refusal: str | None = None
    _counted_ip: str | None = None

    def connection_made(self, transport) -> None:
        upgrade = self.transport is not None  # STARTTLS: the same connection, once more
        super().connection_made(transport)
        if not upgrade:
            ip = peer_ip(self.session)
            self.session.trace_id = "smtp-" + secrets.token_hex(8)
            emit("smtp.connection-start", self.session.trace_id, **connection_data(self))
            self._refusal = self.event_handler.connections.open(ip)
            if self._refusal is None:
                self._counted_ip = ip

    def connection_lost(self, error) -> None:
        if self.session is not None and self.session.trace_id:
            emit("smtp.connection-end", self.session.trace_id)
            self.session.trace_id = ""  # ended once, however often this is called
        if self._counted_ip is not None:
            self.event_handler.connections.close(self._counted_ip)
            self._counted_ip = None
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._refusal is not None:
            await self.push(self._refusal)
            self.transport.close()
            return
        await super()._handle_client()

    def _create_session(self) -> MailSession:
        return MailSession(self.loop)

    def _create_envelope(self) -> MailEnvelope:
        return MailEnvelope()

    def _getparams(self, params):
        """aiosmtpd checks SIZE with str.isdigit(), true of '²', then int() raises: 451."""
        found = super()._getparams(params)
        size = found.get("SIZE") if found else None
        if isinstance(size, str) and not digits(size):
            return None  # the syntax error SIZE=abc gets
        return found

    async def push(self, status):
        if isinstance(status, str):
            status = with_enhanced_code(STOCK_REPLIES.get(status, status))
        await super().push(status)

    async def auth_PLAIN(self, _, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await self.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await self.push("501 5.5.2 Cannot decode base64")
                return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await self.push("501 5.5.2 Cannot split the AUTH PLAIN value")
            return AuthResult(success=False, handled=True)
        authzid, login, password = parts
        if authzid and authzid != login:  # acting as someone else is not offered
            return AuthResult(success=False, handled=False)
        return await self.event_handler.authenticate(self, login, password)

    async def auth_LOGIN(self, _, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await self.challenge_auth(self.AuthLoginUsernameChallenge)
            if login is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                login = b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await self.push("501 5.5.2 Cannot decode base64")
                return AuthResult(success=False, handled=True)
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        return await self.event_handler.authenticate(self, login, password)


class BaseHandler:
    """What both listeners share: the database pool, EHLO without an empty AUTH line,
    and a temporary error (never a traceback) when something breaks."""

    offers_auth = False

    def __init__(self, pool: DbPool) -> None:
        self.pool = pool
        self.connections = Connections()

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses
    ) -> list[str]:
        session.host_name = hostname
        offered = [r for r in responses if self.offers_auth or not r.startswith("250-AUTH")]
        # PIPELINING (RFC 2920): aiosmtpd answers commands in the order read and drops what
        # was sent after STARTTLS, which is all the extension asks of a server.
        return [*offered[:-1], "250-PIPELINING", offered[-1]]

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):  # a client's failed handshake, not ours
            log.info("STARTTLS handshake failed: %s", error.__cause__)
        else:
            log.exception("SMTP session failed", exc_info=error)
        return TEMPORARY_ERROR

    async def authenticate(self, server: SMTP, login: bytes, password: bytes) -> AuthResult:
        return AuthResult(success=False, handled=False)

    def recipient_refusal(self, envelope: MailEnvelope, address: str) -> str | None:
        """What both listeners refuse in any RCPT: one too many, no domain, bad encoding."""
        if len(envelope.rcpt_tos) >= settings.MAILADMIN_SMTP_MAX_RECIPIENTS:
            return TOO_MANY_RECIPIENTS
        local, at, domain = address.rpartition("@")
        if not (local and at and domain):
            return BAD_ADDRESS
        return address_encoding_error(address, smtputf8=envelope.smtp_utf8)

    def stamp(
        self, server: SMTP, session: Session, envelope: MailEnvelope, *, authenticated: bool
    ) -> tuple[str, bytes] | str:
        """(queue id, Received line) for the message just received, or a refusal when its
        header section is over MAILADMIN_SMTP_MAX_HEADER_SIZE."""
        data = envelope.original_content or b""
        if header_end(data) > settings.MAILADMIN_SMTP_MAX_HEADER_SIZE:
            return HEADER_TOO_LARGE
        qid = queue_id()
        tls = tls_info(session)
        received = received_header(
            helo=session.host_name,
            ip=peer_ip(session),
            hostname=server.hostname,
            protocol=protocol_name(
                extended=session.extended_smtp,
                tls=tls is not None,
                authenticated=authenticated,
                smtputf8=envelope.smtp_utf8,
            ),
            queue_id=qid,
            tls=tls,
            recipients=envelope.rcpt_tos,
            now=datetime.now(UTC),
            eol=line_ending(data),
        )
        return qid, received


def make_server(
    handler: BaseHandler,
    *,
    hostname: str,
    ident: str,
    tls_context: ssl.SSLContext | None,
    auth_require_tls: bool = True,
) -> MailSMTP:
    return MailSMTP(
        handler,
        hostname=hostname,
        ident=ident,
        data_size_limit=settings.MAILADMIN_MAX_MESSAGE_SIZE,
        enable_SMTPUTF8=True,
        tls_context=tls_context,
        auth_require_tls=auth_require_tls,
        auth_exclude_mechanism=() if handler.offers_auth else ("PLAIN", "LOGIN"),
        command_call_limit={"AUTH": AUTH_PER_CONNECTION, "*": UNLIMITED},
    )


def make_handler(name: str, pool: DbPool) -> BaseHandler:
    from apps.queue.smtp.inbound import InboundHandler
    from apps.queue.smtp.submission import SubmissionHandler

    if name == "inbound":
        return InboundHandler(pool)
    if name == "submission":
        return SubmissionHandler(pool)
    raise ValueError(f"unknown SMTP listener {name!r} (inbound or submission)")


async def start_servers(
    binds: dict[str, tuple[str, int]],
    *,
    pool: DbPool,
    auth_require_tls: bool | None = None,
) -> dict[str, asyncio.Server]:
    """Listen on each bind. AUTH needs STARTTLS first unless the listener is bound to
    loopback; `auth_require_tls` overrides that (tests)."""
    loop = asyncio.get_running_loop()
    hostname = settings.MAILADMIN_HOSTNAME
    context = server_context()
    servers = {}
    for name, (host, port) in binds.items():
        handler = make_handler(name, pool)
        require_tls = not is_loopback(host) if auth_require_tls is None else auth_require_tls
        servers[name] = await loop.create_server(
            lambda handler=handler, ident=f"mailadmin {name}", require_tls=require_tls: make_server(
                handler,
                hostname=hostname,
                ident=ident,
                tls_context=context,
                auth_require_tls=require_tls,
            ),
            host=host,
            port=port,
            reuse_address=True,
            # several `smtp_listen` processes may share the port; the kernel spreads
            # connections over them (Linux; elsewhere the option is refused, so it is off)
            reuse_port=hasattr(socket, "SO_REUSEPORT"),
        )
        log.info(
            "SMTP %s listening on %s:%d", name, host, servers[name].sockets[0].getsockname()[1]
        )
    return servers


async def serve(binds: dict[str, tuple[str, int]]) -> None:
    """Run one listener per bind until cancelled."""
    pool = DbPool(settings.MAILADMIN_SMTP_DB_THREADS)
    try:
        servers = await start_servers(binds, pool=pool)
        try:
            await asyncio.gather(*(s.serve_forever() for s in servers.values()))
        finally:
            for server in servers.values():
                server.close()
    finally:
        pool.stop()


class ListenerThread:
    """The listeners on a private event loop in a thread (tests, embedded use).

    Port 0 binds an ephemeral port; `ports` tells which one each listener got.
    """

    def __init__(
        self, binds: dict[str, tuple[str, int]], *, auth_require_tls: bool | None = None
    ) -> None:
        self.binds = binds
        self.auth_require_tls = auth_require_tls
        self.loop = asyncio.new_event_loop()
        self.servers: dict[str, asyncio.Server] = {}
        self.pool: DbPool | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> ListenerThread:
        self.pool = DbPool(settings.MAILADMIN_SMTP_DB_THREADS)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            start_servers(self.binds, pool=self.pool, auth_require_tls=self.auth_require_tls),
            self.loop,
        )
        self.servers = future.result(timeout=30)
        return self

    @property
    def ports(self) -> dict[str, int]:
        return {name: s.sockets[0].getsockname()[1] for name, s in self.servers.items()}

    def stop(self) -> None:
        async def close() -> None:
            for server in self.servers.values():
                server.close()
                await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if self.pool is not None:
            self.pool.stop()
