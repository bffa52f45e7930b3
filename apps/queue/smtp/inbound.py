"""The inbound MX: mail for hosted recipients only, delivered into the mail store.

RCPT is answered from the store's recipient resolution (unknown mailbox 550 5.1.1, a
domain not hosted here 550 5.7.1, a full mailbox 452 4.2.2, judged with MAIL FROM's SIZE=
when given). DATA adds a Received line, passes the message to the spam filter's hook,
and stores one copy per mailbox (or holds it in the quarantine, when the filter says so)
and queues one copy for the external forward addresses, all in one database
transaction: the client hears 250 only after everything is committed, and 451 (so it
retries) when anything failed, with nothing half-delivered.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiosmtpd.smtp import SMTP, Session
from django.conf import settings
from django.db import DatabaseError, InterfaceError, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from apps.queue.smtp.headers import (
    header_end,
)
from apps.queue.smtp.server import (
    RECIPIENT_OK,
    SENDER_OK,
    TEMPORARY_ERROR,
    BaseHandler,
    MailEnvelope,
    address_encoding_error,
    peer_ip,
)
from apps.spamfilter.rules import RulesError
from apps.telemetry.events import emit
from mailadmin.converters import digits
from mailadmin.mime import MimeTooDeep

if TYPE_CHECKING:
    from apps.spamfilter.received import Hop

log = logging.getLogger(__name__)

UNKNOWN_USER = "550 5.1.1 Recipient address rejected: User unknown"
RELAY_DENIED = "550 5.7.1 Relaying denied"
MAILBOX_FULL = "452 4.2.2 Mailbox full"
TOO_MANY_HOPS = "554 5.4.6 Too many hops (mail loop?)"
MIME_TOO_DEEP = "554 5.6.0"  # + MimeTooDeep's message
SRS_INVALID = "550 5.1.1 Invalid SRS address: {reason}"
MAX_HOPS = 50  # Received lines, as Postfix's hopcount_limit
_RECEIVED = re.compile(rb"^Received[ \t]*:", re.I | re.M)


def declared_size(mail_options: list[str]) -> int:
    for option in mail_options:
        name, _, value = option.partition("=")
        if name.upper() == "SIZE" and digits(value):
            return int(value)
    return 0


@dataclass
class Route:
    """Where mail for one accepted recipient goes."""

    mailboxes: list = field(default_factory=list)  # Principals (store delivery)
    forward_to: list[str] = field(default_factory=list)  # external addresses (queue)
    tenant_id: int | None = None
    report_domain: object = None  # a report address's domain: ingested as reports
    # The hosted domain of the address: relayed copies' return path is SRS-rewritten into it.
    srs_domain: str = ""
    # Members of a list or group left out because their mailbox is full: the sender gets
    # a failure DSN naming each (`address` is the recipient the sender used).
    full: list = field(default_factory=list)  # Principals
    address: str = ""
    # The addresses in forward_to that are one mailbox's own forward (mailbox id ->
    # address, full mailboxes' included): they follow that mailbox's copy.
    forwarded_by: dict[int, str] = field(default_factory=dict)


def route_recipient(address: str, size: int) -> tuple[str | None, Route | None]:
    """(refusal, None) or (None, route) for one RCPT (runs in the database pool).

    A member of a list or group whose mailbox is full is left out (and logged); the
    recipient is refused with 452 only when no mailbox and no forward address remain.
    """
    from apps.store.recipients import resolve
    from apps.store.services import over_quota, quota_exceeded, used_bytes_by_principal

    resolution = resolve(address)
    if resolution is None:
        return RELAY_DENIED, None
    if not resolution.known:
        if resolution.srs_error:
            return SRS_INVALID.format(reason=resolution.srs_error), None
        return UNKNOWN_USER, None
    if getattr(resolution, "ingest_reports", False) and resolution.domain is not None:
        return None, Route(tenant_id=resolution.domain.tenant_id, report_domain=resolution.domain)
    if len(resolution.mailboxes) == 1:
        [mailbox] = resolution.mailboxes
        full = [mailbox] if quota_exceeded(mailbox, size) else []
    else:  # a list's members: their usage in one query
        limited = [p for p in resolution.mailboxes if p.quota and p.quota > 0]
        used = used_bytes_by_principal(limited) if limited else {}
        full = [p for p in resolution.mailboxes if over_quota(p, used.get(p.pk, 0), size)]
    room = [p for p in resolution.mailboxes if p not in full]
    if full and not room and not resolution.forward_to:
        return MAILBOX_FULL, None
    for principal in full:
        log.warning("mailbox %s is full: left out of mail for %s", principal.name, address)
    tenants = {p.tenant_id for p in resolution.mailboxes}
    if not tenants and resolution.domain is not None:  # forwarding only (an SRS bounce)
        tenants = {resolution.domain.tenant_id}
    tenant_id = tenants.pop() if len(tenants) == 1 else None
    srs_domain = resolution.domain.name if resolution.domain is not None else ""
    return None, Route(
        room, list(resolution.forward_to), tenant_id, srs_domain=srs_domain, full=full,
        address=address, forwarded_by=dict(resolution.forwarded_by),
    )  # fmt: skip


@dataclass(frozen=True)
class InboundMessage:
    """One message as the MX accepted it, for the spam filter and for delivery."""

    queue_id: str
    mail_from: str  # "" for the null sender (bounces)
    recipients: list[str]
    peer_ip: str
    helo: str
    tls: bool
    data: bytes  # with our Received line on top
    trace_id: str = ""  # telemetry: the SMTP session (or fetch run) it arrived in
    smtputf8: bool = False  # MAIL FROM said SMTPUTF8: raw UTF-8 headers are allowed
    # Fetched mail: the client the remote provider accepted it from (its Received line),
    # judged by SPF, iprev and the HELO checks instead of peer_ip, the server fetched from.
    judged_hop: Hop | None = None


@dataclass
class ScanVerdict:
    data: bytes  # the message to store (the filter may add headers)
    folder: str = "INBOX"  # e.g. "Junk"
    reject: str | None = None  # an SMTP reply refusing the message, e.g. "550 5.7.1 ..."
    discard: bool = False  # accepted and dropped (the discard threshold or a rule's action)
    # Recipients' own sender lists (principal ids): a safe-listed sender's copy goes to
    # INBOX as `safe_data` whatever the verdict; a blocked sender's copy is not stored.
    safelisted: frozenset[int] = frozenset()
    blocked: frozenset[int] = frozenset()
    safe_data: bytes = b""
    unfiltered: frozenset[int] = frozenset()  # spam filter off: INBOX as `data`
    # Safe-listed by an address the message does not authenticate: filtered like the
    # others, stored as `unverified_data` (a header saying why the list was not applied).
    unverified: frozenset[int] = frozenset()
    unverified_data: bytes = b""
    # What the quarantine keeps of the verdict (folder QUARANTINE): score, tags, why.
    score: float = 0.0
    tags: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def copy_for(self, principal_id: int) -> tuple[bytes, str] | None:
        """(message, folder) to store for one mailbox (folder QUARANTINE: held in the
        mailbox's or its domain's quarantine), or None for no copy."""
        if principal_id in self.safelisted:
            return self.safe_data, "INBOX"
        if principal_id in self.unfiltered:
            return self.data, "INBOX"
        if self.discard or self.reject or principal_id in self.blocked:
            return None
        if principal_id in self.unverified:
            return self.unverified_data, self.folder
        return self.data, self.folder


# Not a folder: copies "stored" here go to apps.spamfilter.quarantine instead.
QUARANTINE = "\x00quarantine"
# What the filter's action means for where a message goes: quarantined mail is held in
# the quarantine (released to INBOX, or deleted, by an administrator; purged after the
# retention), spam over the spam threshold goes to Junk.
QUARANTINE_ACTIONS = {"quarantine"}
BLOCKED_SENDER = "550 5.7.1 Message refused: the recipient does not accept mail from this sender"
SAFELISTED = b"X-Spam-Sender-List: SAFELISTED\r\n"
UNVERIFIED = b"X-Spam-Sender-List: UNVERIFIED; "  # + why the safe list was not applied
DISPOSITIONS = {"reject": "reject", "quarantine": "quarantine", "discard": "reject"}
# What makes a scan fail for now (the client is told 451): the database, Redis, the
# network or disk, a rules file no process here could load (every message would fail
# until an administrator fixes it); any other error the scan raises is one these bytes
# would meet again: the message is held in the quarantine.
OUTAGES = (DatabaseError, InterfaceError, RedisError, OSError, RulesError)


def scan_inbound(
    message: InboundMessage,
    mailbox_ids: list[int] | tuple = (),
    *,
    report_authentication: bool = True,
    refuse: bool = True,
    full_ids: list[int] | tuple = (),
) -> ScanVerdict:
    """The spam filter's hook: every inbound message passes here before it is stored.

    apps.spamfilter scores it (SPF, DKIM, ARC, DMARC, iprev, rules, Bayes); its
    Authentication-Results and X-Spam-* headers go on top of the message; a quarantining
    verdict (MAILADMIN_SPAM_THRESHOLD_QUARANTINE, or a rule's action) holds each copy in
    the recipient's quarantine (its domain's when the mailbox's settings say
    `sendtodomainquarantine`) with the score and tags, other spam goes to Junk, a
    rejecting verdict is refused with 550 5.7.1 naming why, a discarding one is accepted
    and dropped. The authentication outcome is recorded for our outgoing DMARC
    aggregate reports, rejected mail included. MAILADMIN_SPAM_FILTER=false skips all
    of it (the mailboxes' sender lists included) but the removal of the headers a sender
    forged in our name. Runs in the listener's database pool
    (blocking I/O is fine) inside no transaction.

    The recipients' (`mailbox_ids`) block and safe lists are honoured per copy: a
    safe-listed sender's copy is never junked, dropped or refused (it goes to INBOX with
    `X-Spam-Sender-List: SAFELISTED`; since one DATA reply can't refuse only some
    recipients, a rejecting verdict then holds the other recipients' copies in their
    quarantine, with the score, tags and reasons, as a quarantining verdict does: mail
    judged bad enough to refuse never lands in their mailboxes, Junk included); a blocked
    sender's copy is not stored (deliver_inbound refuses the message with 550 5.7.1 when
    no recipient is left). A mailbox's spam settings: filter "off" is treated like a safe
    list without the tag; "exclusive" blocks every sender its safe lists don't name.
    An address or domain safe entry counts only when the message authenticates the
    sender's domain (DMARC, or aligned SPF/DKIM pass); otherwise that copy is filtered
    like the others and tagged `X-Spam-Sender-List: UNVERIFIED; <why>`.

    `report_authentication=False` leaves the message out of our outgoing DMARC reports
    (fetch jobs: we were not the sender's receiving MTA; the client judged is the one a
    Received line of the remote provider names, which a domain owner should not be sent
    as if we had seen it connect).

    A scan that fails on the message itself (not an outage: OUTAGES) holds it in the
    quarantine of every recipient, with why: a 451 would have the sender retry the same
    bytes into the same failure for days.

    `full_ids`: recipients left out because their mailbox is full; their lists are
    looked up too (they decide the mailbox's forward and whether a report names it),
    Bayes is not theirs.

    `refuse=False` (fetch jobs: no client is there to hear a 550) holds a message the
    filter would refuse in the quarantine, as it does for the other recipients of one a
    safe-listing recipient accepts.
    """
    from apps.spamfilter.services import scan, strip_forged_headers

    if not settings.MAILADMIN_SPAM_FILTER:
        return ScanVerdict(data=strip_forged_headers(message.data))
    # One scan serves every copy: a lone recipient's own Bayes model (once it has learned
    # enough, else the global one) judges its mail; several share the global model.
    recipients = set(mailbox_ids)
    try:
        verdict = scan(
            message=message.data,
            remote_ip=message.peer_ip,
            ehlo_domain=message.helo,
            env_from=message.mail_from,
            env_rcpt_to=message.recipients,
            is_tls=message.tls,
            bayes_account_id=next(iter(recipients)) if len(recipients) == 1 else None,
            recipient_mailboxes=list(dict.fromkeys([*mailbox_ids, *full_ids])),
            judged_hop=message.judged_hop,
            smtputf8=message.smtputf8,
        )
    except MimeTooDeep as exc:  # refused for good, as Postfix does past mime_nesting_limit
        return ScanVerdict(data=message.data, reject=f"{MIME_TOO_DEEP} {exc.message}")
    except OUTAGES:
        raise  # the client hears 451 and tries again later
    except Exception as exc:  # noqa: BLE001 - a bug met by these bytes: it would meet it again
        log.exception("the spam filter could not scan %s", message.queue_id)
        why = f"the spam filter could not scan this message ({type(exc).__name__})"
        emit("spam.verdict", message.trace_id, score=0.0, action="quarantine", error=why)
        return ScanVerdict(
            data=strip_forged_headers(message.data), folder=QUARANTINE, reasons=[why]
        )
    emit("spam.verdict", message.trace_id, score=verdict.score, action=verdict.action)
    if report_authentication:
        _record_authentication(message, verdict)
    lists = verdict.sender_lists
    safe = frozenset(i for i, status in lists.items() if status == "safe")
    blocked = frozenset(i for i, status in lists.items() if status == "block")
    unfiltered = frozenset(i for i, status in lists.items() if status == "unfiltered")
    unverified = frozenset(i for i, status in lists.items() if status == "unverified")
    data = verdict.headers.encode("utf-8", "replace") + strip_forged_headers(message.data)
    listed = {"safelisted": safe, "blocked": blocked, "safe_data": SAFELISTED + data,
              "unfiltered": unfiltered}  # fmt: skip
    if unverified:
        note = _one_line(verdict.sender_list_note).encode("utf-8", "replace")
        listed.update(unverified=unverified, unverified_data=UNVERIFIED + note + b"\r\n" + data)
    held = {
        "folder": QUARANTINE,
        "score": verdict.score,
        "tags": {tag: result.value for tag, result in verdict.tags.items()},
        "reasons": list(verdict.reasons),
    }
    if verdict.action == "reject":
        if safe or unfiltered or not refuse:  # accepted for them; held for the others
            return ScanVerdict(data=data, **held, **listed)
        why = "; ".join(verdict.reasons) or "message refused by the spam filter"
        return ScanVerdict(data=message.data, reject=f"550 5.7.1 {_one_line(why)}")
    if verdict.action == "discard":
        return ScanVerdict(data=data, discard=True, **listed)
    if verdict.action in QUARANTINE_ACTIONS:
        return ScanVerdict(data=data, **held, **listed)
    return ScanVerdict(data=data, folder="Junk" if verdict.is_spam else "INBOX", **listed)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:400]


def _record_authentication(message: InboundMessage, verdict) -> None:
    """Our DMARC aggregate reports are built from these rows (and failure reports queued
    where the sender's DMARC record asks); failing to write one is logged, never a reason
    to refuse mail."""
    auth = verdict.auth
    if auth is None:  # authenticated submission: nothing was checked
        return
    from apps.reports.services import DmarcVerdict, record_inbound_auth

    try:
        record_inbound_auth(
            source_ip=auth.ip or message.peer_ip,
            envelope_from=message.mail_from,
            spf_domain=auth.spf.domain,
            spf_result=auth.spf.result,
            dkim_results=[
                {"domain": d.domain, "selector": d.selector, "result": d.result} for d in auth.dkim
            ],
            verdicts=[
                DmarcVerdict(
                    header_from=dmarc.domain,
                    result=dmarc.result,
                    spf_aligned=dmarc.spf_aligned,
                    dkim_aligned=dmarc.dkim_aligned,
                    disposition=DISPOSITIONS.get(verdict.action, "none"),
                    policy=dmarc.published,
                    record_domain=dmarc.record_domain,
                )
                for dmarc in auth.dmarc_each or [auth.dmarc]  # each author domain's
            ],
            original=message.data,  # a failure report (ruf) sends its headers, never the body
            authentication_results=verdict.authentication_results,
            delivery_result=(
                "reject"
                if verdict.action == "reject"
                else "spam"
                if verdict.is_spam or verdict.action == "quarantine"
                else "delivered"
            ),
        )
    except DatabaseError:
        log.exception("could not record the authentication results of %s", message.queue_id)


def deliver_inbound(message: InboundMessage, routes: list[Route]) -> str | None:
    """Store and forward one accepted message; a refusal reply, or None when done."""
    mailboxes = [p.pk for route in routes for p in route.mailboxes]
    full = [p.pk for route in routes for p in route.full]
    verdict = scan_inbound(message, list(dict.fromkeys(mailboxes)), full_ids=full)
    return store_inbound(message, routes, verdict)


def store_inbound(message: InboundMessage, routes: list[Route], verdict: ScanVerdict) -> str | None:
    """deliver_inbound after the scan: store, hold and forward the copies the verdict
    says (fetch jobs scan first themselves, to record where the message went)."""
    from apps.store import blobs, encryption
    from apps.store.services import deliver

    mailboxes = {p.pk: p for route in routes for p in route.mailboxes}
    if verdict.reject:
        return verdict.reject
    copies = {pk: verdict.copy_for(pk) for pk in mailboxes}
    copies = {pk: copy for pk, copy in copies.items() if copy is not None}
    # Forwards go out unless the verdict holds the message: a quarantined message (or a
    # rejecting one accepted for a safe-listing recipient) waits for an administrator, and
    # releasing it delivers to the INBOX only; relaying it on would hand spam we judged
    # too bad for Junk to another provider under our name. A mailbox's own forward follows
    # that mailbox's copy (its block and safe lists, filter off, exclusive): it goes when
    # the mailbox's copy is delivered, Junk included, whatever the other recipients' lists
    # say; a list's external members follow the verdict alone.
    on_hold = verdict.folder == QUARANTINE

    def forwards_for(route: Route) -> list[str]:
        own = route.forwarded_by
        sent_on = {
            address
            for pk, address in own.items()
            if (copy := verdict.copy_for(pk)) is not None and copy[1] != QUARANTINE
        }
        held = verdict.discard or on_hold
        return [a for a in route.forward_to if a in sent_on or (a not in own.values() and not held)]

    forwarding = [(route, addresses) for route in routes if (addresses := forwards_for(route))]
    passing_on = bool(forwarding) or (not verdict.discard and any(r.report_domain for r in routes))
    if not copies and not passing_on:
        if verdict.blocked and not verdict.discard:
            log.info("refused %s from <%s>: blocked by every recipient", message.queue_id,
                     message.mail_from)  # fmt: skip
            return BLOCKED_SENDER
        if on_hold:  # only forwards, none of which may go: nowhere to hold it, so refuse
            log.info("refused %s from <%s>: held by the spam filter, recipients only forward",
                     message.queue_id, message.mail_from)  # fmt: skip
            why = "; ".join(verdict.reasons) or "message refused by the spam filter"
            return f"550 5.7.1 {_one_line(why)}"
        log.info("discarded %s from <%s>: spam filter", message.queue_id, message.mail_from)
        return None
    # Encryption at rest (one settings query for all the mailboxes), then the bytes, all
    # outside the transaction: content-addressed, written once and fsynced while no
    # database lock is held (deliver() finds them already there). The quarantine holds
    # the clear message for its reviewers; releasing it encrypts.
    stored_in = [mailboxes[pk] for pk, (_, folder) in copies.items() if folder != QUARANTINE]
    at_rest = encryption.at_rest_for(stored_in)
    for pk, choice in at_rest.items():
        data, folder = copies[pk]
        copies[pk] = (encryption.protect(data, choice, owner=mailboxes[pk].name), folder)
    for data in {data for data, _ in copies.values()} | ({verdict.data} if passing_on else set()):
        blobs.put(data)
    with transaction.atomic():  # every copy or none: a retried message is not doubled
        forwards: dict[tuple[int | None, str, str], None] = {}
        report_domains = [r.report_domain for r in routes if r.report_domain is not None]
        if report_domains and passing_on:  # DMARC/TLS-RPT reports to a domain's report address
            from apps.store.recipients import ingest_report_mail

            ingest_report_mail(report_domains, verdict.data)
        held: dict[bytes, list] = {}  # the quarantine's copies, by their bytes
        routed_to: dict[int, str] = {}  # each mailbox's own RCPT (a group's, a list's)
        for route in routes:
            for principal in route.mailboxes:
                routed_to.setdefault(principal.pk, route.address)
        for pk, (data, folder) in copies.items():
            if folder == QUARANTINE:
                held.setdefault(data, []).append(mailboxes[pk])
            else:
                deliver(mailboxes[pk], data, folder=folder, at_rest_applied=True)
        for data, held_for in held.items():
            from apps.spamfilter.quarantine import quarantine_store

            quarantine_store(
                mailboxes=held_for,
                data=data,
                sender=message.mail_from,
                score=verdict.score,
                tags=verdict.tags,
                reasons=verdict.reasons,
                peer_ip=message.peer_ip,
                queue_id=message.queue_id,
                routed_to=routed_to,
            )
        for route, addresses in forwarding:
            for address in addresses:
                forwards[(route.tenant_id, route.srs_domain, address)] = None
        by_sender: dict[tuple[int | None, str], list[str]] = {}
        for tenant_id, srs_domain, address in forwards:
            by_sender.setdefault((tenant_id, srs_domain), []).append(address)
        if by_sender:
            from apps.queue import srs
            from apps.queue.services import enqueue
        for (tenant_id, srs_domain), addresses in by_sender.items():
            # SRS: the return path moves into the forwarding domain, so SPF passes there
            return_path = message.mail_from
            if srs_domain:
                return_path = srs.rewrite_sender(return_path, forwarding_domain=srs_domain)
            enqueue(
                return_path=return_path,
                recipients=addresses,
                data=verdict.data,
                tenant_id=tenant_id,
            )
        _report_full_members(message, routes, verdict)
    return None


def _report_full_members(
    message: InboundMessage, routes: list[Route], verdict: ScanVerdict
) -> None:
    """A failure DSN to the sender naming each list member whose mailbox was full (the
    other members got the message); none for a null sender. One per tenant: a queued
    DSN is its tenant's message (raw bytes in its console), so it names no other
    tenant's members. Only members whose copy would have been delivered are named: a
    message the filter holds or drops for them (or from a sender they block) sends no
    report, which would be backscatter to the address spam forges."""
    from apps.queue.delivery import send_over_quota_dsn

    by_tenant: dict[int | None, list] = {}
    for route in routes:
        for principal in route.full:
            copy = verdict.copy_for(principal.pk)
            if copy is None or copy[1] == QUARANTINE:
                continue
            by_tenant.setdefault(principal.tenant_id, []).append((route.address, principal))
    for tenant_id, left_out in by_tenant.items():
        send_over_quota_dsn(
            to=message.mail_from,
            left_out=left_out,
            original=message.data[: 64 * 1024],
            arrival=timezone.now(),
            tenant_id=tenant_id,
        )


class InboundHandler(BaseHandler):
    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: MailEnvelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        refusal = address_encoding_error(address, smtputf8=envelope.smtp_utf8)
        emit(
            "smtp.mail-from-refused" if refusal else "smtp.mail-from",
            session.trace_id,
            **{"from": address},
        )
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.declared_size = declared_size(mail_options)
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
        if not refusal:
            refusal, route = await self.pool.run(route_recipient, address, envelope.declared_size)
        emit(
            "smtp.rcpt-to-refused" if refusal else "smtp.rcpt-to",
            session.trace_id,
            to=address,
            reply=refusal or RECIPIENT_OK,
        )
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        envelope.resolutions[address] = route
        return RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: MailEnvelope) -> str:
        stamped = self.stamp(server, session, envelope, authenticated=False)
        if isinstance(stamped, str):
            return stamped
        qid, received = stamped
        data = envelope.original_content or b""
        if len(_RECEIVED.findall(data, 0, header_end(data))) >= MAX_HOPS:
            return TOO_MANY_HOPS
        ip = peer_ip(session)
        mail_from = "" if envelope.mail_from == "<>" else envelope.mail_from
        message = InboundMessage(
            queue_id=qid,
            mail_from=mail_from,
            recipients=list(envelope.rcpt_tos),
            peer_ip=ip,
            helo=session.host_name or "",
            tls=session.ssl is not None,
            data=received + data,
            trace_id=session.trace_id,
            smtputf8=envelope.smtp_utf8,
        )
        routes = [envelope.resolutions[address] for address in dict.fromkeys(envelope.rcpt_tos)]
        try:
            refusal = await self.pool.run(deliver_inbound, message, routes)
        except Exception:
            log.exception("inbound %s from %s: delivery failed", qid, ip)
            refusal = TEMPORARY_ERROR
        emit(
            "smtp.message-rejected" if refusal else "smtp.message-accepted",
            session.trace_id,
            queueId=qid,
            size=len(data),
            recipients=len(message.recipients),
            reply=refusal or "250",
        )
        if refusal:
            return refusal
        log.info(
            "inbound %s accepted from %s <%s> for %d recipient(s), %d bytes",
            qid,
            ip,
            mail_from,
            len(message.recipients),
            len(data),
        )
        return f"250 2.0.0 OK: queued as {qid}"
