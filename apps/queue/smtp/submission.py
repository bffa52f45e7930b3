"""The submission service (RFC 6409): authenticated clients hand over mail to send.

AUTH PLAIN and LOGIN check the account password or an app password through the
accounts app's one password check (lockout and throttling included; a login that
succeeded is remembered for a short while, as HTTP Basic's, so a client opening a
connection per message pays no password hash each time); before STARTTLS
they are neither offered nor accepted unless the listener is bound to loopback. MAIL FROM
must be one of the account's own addresses; per-account and per-address message rates
are capped (counters in the Django cache). An accepted message gets a Received line,
Date and Message-ID when missing, the sender domain's DKIM signature, and goes to the
outbound queue for all its recipients (the queue delivers hosted domains locally),
committed together with the other sessions' messages of that moment (group commit,
`services.enqueue_grouped`); the 250 goes out once the message is durable.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aiosmtpd.smtp import SMTP, AuthResult, Session
from django.conf import settings
from django.core.cache import cache

from apps.accounts.emails import InvalidAddress, normalize_address, normalize_domain
from apps.queue.smtp.headers import add_missing_headers
from apps.queue.smtp.server import (
    RECIPIENT_OK,
    SENDER_OK,
    TEMPORARY_ERROR,
    BaseHandler,
    MailEnvelope,
    address_encoding_error,
    peer_ip,
)
from apps.telemetry.events import emit

log = logging.getLogger(__name__)

AUTH_REQUIRED = "530 5.7.0 Authentication required"
AUTH_TEMPORARY = "454 4.7.0 Temporary authentication failure"
NOT_OWNED = "553 5.7.1 Sender address rejected: not owned by the authenticated user"
ACCOUNT_RATE = "451 4.7.1 Too many messages from this account, try again later"
ADDRESS_RATE = "451 4.7.1 Too many messages from this address, try again later"
MALFORMED_HEADER = "554 5.6.0 Message header cannot be parsed for signing"


class Refused(Exception):
    """A message the submission service turns down with an SMTP reply."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True)
class Sender:
    """The authenticated account of a submission session."""

    principal_id: int
    name: str
    tenant_id: int | None
    addresses: frozenset[str]


def authenticate_sender(identifier: str, password: str, ip: str) -> Sender:
    """The account behind these credentials, or login.InvalidCredentials/LoginLocked."""
    from apps.accounts.auth import login

    principal = login.authenticate_password(
        identifier=identifier, password=password, ip=ip, app_passwords=True
    )
    login.login_cleared(principal=principal, ip=ip)
    return Sender(
        principal_id=principal.pk,
        name=principal.name,
        tenant_id=principal.tenant_id,
        addresses=frozenset(principal.emails.values_list("address", flat=True)),
    )


def _count(key: str, limit: int, window: int) -> bool:
    """Count one message in this window; True when the count is past `limit`."""
    if limit <= 0:
        return False
    bucket = f"smtp-rate:{key}:{int(time.time() // window)}"
    cache.add(bucket, 0, timeout=window * 2)
    try:
        count = cache.incr(bucket)
    except ValueError:  # expired between add and incr
        cache.set(bucket, 1, timeout=window * 2)
        count = 1
    return count > limit


def rate_limit_refusal(principal_id: int, ip: str) -> str | None:
    """Fixed-window message counters per account and per client address (an IPv6
    address counted as its /64, as the login lockout does)."""
    from apps.accounts.auth.login import throttle_address

    window = settings.MAILADMIN_SUBMISSION_RATE_WINDOW
    if _count(f"account:{principal_id}", settings.MAILADMIN_SUBMISSION_RATE_ACCOUNT, window):
        return ACCOUNT_RATE
    if _count(f"ip:{throttle_address(ip)}", settings.MAILADMIN_SUBMISSION_RATE_IP, window):
        return ADDRESS_RATE
    return None


def dkim_sign(message: bytes, *, domain: str) -> bytes:
    """The message with a signature by each of the domain's signing keys on top (its
    active RSA and Ed25519 keys: RSA on top, for verifiers without Ed25519), or unchanged
    when the domain has none. Each signature is made over the message alone and written
    in the message's own line endings."""
    import dkim as dkimpy

    from apps.domains import dkim
    from apps.domains.selectors import signing_keys

    keys = sorted(signing_keys(domain), key=lambda k: k.algorithm == dkim.RSA)
    signatures = b""
    for key in keys:
        try:
            signature = dkim.sign(message, domain=domain, selector=key.selector, key=key)
        except dkimpy.DKIMException as exc:
            log.info("cannot DKIM-sign a message for %s: %s", domain, exc)
            raise Refused(MALFORMED_HEADER) from exc
        signatures = signature + signatures
    return signatures + message


def submit(*, sender: Sender, mail_from: str, recipients: list[str], message: bytes):
    """Complete, sign and queue one submitted message (runs in the database pool). The
    message joins the group commit of the sessions submitting at the same time: this
    returns (and the session answers 250) once its blob and rows are durable."""
    from apps.queue.services import enqueue_grouped

    domain = normalize_domain(mail_from.rpartition("@")[2])
    message = add_missing_headers(message, domain=domain, now=datetime.now(UTC))
    message = dkim_sign(message, domain=domain)
    return enqueue_grouped(
        return_path=mail_from, recipients=recipients, data=message, tenant_id=sender.tenant_id
    )


class SubmissionHandler(BaseHandler):
    offers_auth = True

    async def authenticate(self, server: SMTP, login: bytes, password: bytes) -> AuthResult:
        from apps.accounts.auth.login import InvalidCredentials, LoginLocked

        try:
            identifier, secret = login.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:
            return AuthResult(success=False, handled=False)
        try:
            sender = await self.pool.run(
                authenticate_sender, identifier, secret, peer_ip(server.session)
            )
        except InvalidCredentials:
            emit("smtp.auth-failure", server.session.trace_id, login=identifier)
            return AuthResult(success=False, handled=False)  # 535 5.7.8
        except LoginLocked as exc:
            emit("smtp.auth-failure", server.session.trace_id, login=identifier, locked=True)
            return AuthResult(success=False, handled=False, message=f"454 4.7.0 {exc.message}")
        except Exception:
            log.exception("SMTP AUTH failed")
            return AuthResult(success=False, handled=False, message=AUTH_TEMPORARY)
        emit("smtp.auth-success", server.session.trace_id, login=identifier)
        return AuthResult(success=True, auth_data=sender)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: MailEnvelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        sender: Sender | None = session.auth_data if session.authenticated else None
        if sender is None:
            return AUTH_REQUIRED
        refusal = address_encoding_error(address, smtputf8=envelope.smtp_utf8)
        if refusal:
            return refusal
        try:
            owned = address != "<>" and normalize_address(address) in sender.addresses
        except InvalidAddress:
            owned = False
        if not owned:
            return NOT_OWNED
        refusal = await self.pool.run(rate_limit_refusal, sender.principal_id, peer_ip(session))
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return SENDER_OK

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: MailEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self.recipient_refusal(envelope, address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: MailEnvelope) -> str:
        sender: Sender = session.auth_data
        stamped = self.stamp(server, session, envelope, authenticated=True)
        if isinstance(stamped, str):
            return stamped
        qid, received = stamped
        data = envelope.original_content or b""
        recipients = list(dict.fromkeys(envelope.rcpt_tos))
        try:
            await self.pool.run(
                submit,
                sender=sender,
                mail_from=envelope.mail_from,
                recipients=recipients,
                message=received + data,
            )
        except Refused as refused:
            return refused.reply
        except Exception:
            log.exception("submission %s from %s: queueing failed", qid, sender.name)
            return TEMPORARY_ERROR
        emit("submission.message-queued", session.trace_id, queueId=qid, size=len(data))
        log.info(
            "submission %s from %s <%s> for %d recipient(s), %d bytes",
            qid,
            sender.name,
            envelope.mail_from,
            len(recipients),
            len(data),
        )
        return f"250 2.0.0 OK: queued as {qid}"
