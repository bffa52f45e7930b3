"""A live SMTP sink: aiosmtpd on an ephemeral loopback port that records every message."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
import time
import warnings
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple
    tls: bool = False

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class SinkHandler:
    messages: list[ReceivedMessage] = field(default_factory=list)
    # Per-recipient canned SMTP replies let a test make the peer refuse, e.g. "550 5.1.1 no".
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str = "250 2.0.0 OK: queued"
    # A slow peer: each RCPT waits this long before its answer (set `in_rcpt` meanwhile),
    # so a test can kill a client mid-transaction, before any message was accepted.
    rcpt_delay: float = 0.0
    in_rcpt: threading.Event = field(default_factory=threading.Event)
    # ...or only the RCPTs of these addresses (lower case) wait, this long each.
    slow_rcpts: dict[str, float] = field(default_factory=dict)
    rcpts_waiting: set[str] = field(default_factory=set)  # whose RCPT is waiting now
    connections: int = 0
    # Offer PIPELINING (RFC 2920) as real MTAs do; aiosmtpd reads commands in order anyway.
    pipelining: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        delay = self.slow_rcpts.get(address.lower(), self.rcpt_delay)
        if delay:
            self.in_rcpt.set()
            self.rcpts_waiting.add(address.lower())
            try:
                await asyncio.sleep(delay)
            finally:
                self.rcpts_waiting.discard(address.lower())
                self.in_rcpt.clear()
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.data_reply.startswith("2"):
            return self.data_reply
        with self.lock:
            self.messages.append(
                ReceivedMessage(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or envelope.content or b""),
                    peer=session.peer,
                    tls=session.ssl is not None,
                )
            )
        return self.data_reply


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_context(
    directory: str, *, maximum_version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for sink.test."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sink.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "sink-cert.pem")
    key_path = os.path.join(directory, "sink-key.pem")
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    if maximum_version is not None:  # a peer no modern client can agree with
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # old versions on purpose
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            context.maximum_version = maximum_version
    return context


class SmtpSink:
    """`tls_dir`: offer STARTTLS with a self-signed certificate written there (with
    `tls_maximum_version`, a handshake that fails); `tls_context`: with that context."""

    def __init__(
        self,
        *,
        tls_dir: str | None = None,
        tls_maximum_version: ssl.TLSVersion | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = SinkHandler()
        # aiosmtpd's Controller probes its own port when starting, so it needs a real one.
        self._port = _free_port()
        tls = {}
        if tls_dir:
            context = self_signed_context(tls_dir, maximum_version=tls_maximum_version)
            tls = {"tls_context": context}
        if tls_context is not None:  # e.g. a certificate from tests.support.tls_ca
            tls = {"tls_context": tls_context}
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self._port,
            server_hostname="sink.test",
            ready_timeout=10,
            **tls,
        )

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._port

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Wait until at least `count` messages arrived; fail loudly otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return self.messages
            time.sleep(0.05)
        raise AssertionError(f"SMTP sink got {len(self.messages)} message(s), wanted {count}")
