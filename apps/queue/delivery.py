"""The delivery worker's work: claim a due domain entry, deliver it, record the outcome.

- **claim**: one conditional UPDATE takes a scheduled, due entry whose lease is free (or
  lapsed) and gives it a lease under a fresh claim id, unless the queue is stopped. Two
  workers never both change the row, so never deliver the same recipient.
- **deliver**: hosted domains through the store, others over SMTP to their MX hosts in
  preference order, on a pooled connection.
- **record, in `finally`**: the outcome is written under the claim (a worker whose lease
  was taken over writes nothing); an interrupted attempt just releases the lease.
- **sweep** (beat): wake-ups for due entries whose message was lost and entries of dead
  workers (lapsed lease), delay DSNs, and the queue-size samples of the console's chart.
"""

from __future__ import annotations

import logging
import os
import random
import smtplib
import socket
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, Prefetch, Q
from django.utils import timezone

from apps.queue import dsn, remote, tls_policy
from apps.queue.models import (
    FINAL,
    QueueControl,
    QueuedMessage,
    QueueDomain,
    QueueRecipient,
    QueueSample,
    Status,
)
from apps.telemetry.events import emit

log = logging.getLogger(__name__)

DELIVERED, TEMPORARY, PERMANENT = "delivered", "temporary", "permanent"
CLAIM_BATCH = 20  # entries a draining worker claims at once
DRAIN_LIMIT = 400  # entries one task delivers before handing over to a fresh task
SWEEP_BATCH = 1000
LOST_WAKEUP_GRACE = timedelta(seconds=60)
SAMPLE_EVERY = timedelta(seconds=55)
KEEP_SAMPLES = timedelta(days=7)


@dataclass(frozen=True)
class Result:
    kind: str  # delivered | temporary | permanent
    code: int | None
    response: str
    remote_mta: str = ""


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lease() -> timedelta:
    return timedelta(seconds=settings.MAILADMIN_QUEUE_LEASE_SECONDS)


def retry_delay(retry_num: int) -> timedelta:
    """Delay before try number `retry_num + 1` (retry_num failed tries so far, ≥ 1)."""
    schedule = settings.MAILADMIN_QUEUE_RETRY_SCHEDULE
    return timedelta(seconds=schedule[min(retry_num, len(schedule)) - 1])


def _running_q() -> Q:
    return ~Q(Exists(QueueControl.objects.filter(running=False)))


def _claimable(now: datetime) -> Q:
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    return Q(status=Status.SCHEDULED, next_retry__lte=now) & free


def claim(domain_id: int) -> uuid.UUID | None:
    """Take entry `domain_id` if it is due, free and the queue runs; its claim id or None."""
    now = timezone.now()
    claim_id = uuid.uuid4()
    changed = (
        QueueDomain.objects.filter(_claimable(now), pk=domain_id)
        .filter(_running_q())
        .update(claim_id=claim_id, worker=_worker_name()[:255], lease_expires_at=now + lease())
    )
    return claim_id if changed else None


def claim_batch(limit: int = CLAIM_BATCH) -> tuple[uuid.UUID, int]:
    """Take up to `limit` due entries under one claim; the claim id and how many."""
    claim_id, entries = claim_and_load(limit)
    return claim_id, len(entries)


def claim_and_load(limit: int = CLAIM_BATCH) -> tuple[uuid.UUID, list[QueueDomain]]:
    """Take up to `limit` due entries under one claim and load them, with their message
    and scheduled recipients (`entry.due`). PostgreSQL: one statement (the oldest due
    entries no other claimer holds, SKIP LOCKED); elsewhere four queries."""
    if connection.vendor == "postgresql":
        return _claim_and_load_in_one_statement(limit)
    claim_id, taken = _claim_batch_orm(limit)
    return claim_id, (_load(claim_id) if taken else [])


def _claim_batch_orm(limit: int) -> tuple[uuid.UUID, int]:
    """Two queries for the lot. Draining workers pick at random among the oldest due
    entries, so they rarely want the same."""
    claim_id = uuid.uuid4()
    for _ in range(3):
        now = timezone.now()
        candidates = list(
            QueueDomain.objects.filter(_claimable(now))
            .order_by("next_retry")
            .values_list("pk", flat=True)[: limit * 3]
        )
        if not candidates:
            return claim_id, 0
        random.shuffle(candidates)
        changed = (
            QueueDomain.objects.filter(_claimable(now), pk__in=candidates[:limit])
            .filter(_running_q())
            .update(claim_id=claim_id, worker=_worker_name()[:255], lease_expires_at=now + lease())
        )
        if changed:
            return claim_id, changed  # the entries are loaded by their claim id
        if not queue_running():
            break
    return claim_id, 0


def _columns(model) -> tuple[list[str], list[str]]:
    fields = model._meta.concrete_fields
    return [f.column for f in fields], [f.attname for f in fields]


_D_COLUMNS, _D_NAMES = _columns(QueueDomain)
_M_COLUMNS, _M_NAMES = _columns(QueuedMessage)
_R_COLUMNS, _R_NAMES = _columns(QueueRecipient)

# The claim and the load in one round trip: FOR UPDATE SKIP LOCKED passes over entries
# another worker is claiming right now, and rechecks the conditions on rows changed since
# the snapshot (so an entry claimed and committed meanwhile is not taken again). The column
# lists come from the models, never from input.
_CLAIM_AND_LOAD = """
WITH c AS (
    SELECT id FROM queue_queuedomain
    WHERE status = 'scheduled' AND next_retry <= %(now)s
        AND (lease_expires_at IS NULL OR lease_expires_at < %(now)s)
        AND NOT EXISTS (SELECT 1 FROM queue_queuecontrol WHERE NOT running)
    ORDER BY next_retry
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), u AS (
    UPDATE queue_queuedomain d
    SET claim_id = %(claim_id)s, worker = %(worker)s, lease_expires_at = %(lease)s
    FROM c WHERE d.id = c.id
    RETURNING d.*
)
SELECT <columns>
FROM u JOIN queue_queuedmessage m ON m.id = u.message_id
    LEFT JOIN queue_queuerecipient r ON r.domain_id = u.id AND r.status = 'scheduled'
ORDER BY u.next_retry, u.id, r.id
""".replace(
    "<columns>",
    ", ".join(
        [f"u.{c}" for c in _D_COLUMNS]
        + [f"m.{c}" for c in _M_COLUMNS]
        + [f"r.{c}" for c in _R_COLUMNS]
    ),
)


def _claim_and_load_in_one_statement(limit: int) -> tuple[uuid.UUID, list[QueueDomain]]:
    claim_id = uuid.uuid4()
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_AND_LOAD,
            {
                "now": now,
                "limit": limit,
                "claim_id": claim_id,
                "worker": _worker_name()[:255],
                "lease": now + lease(),
            },
        )
        rows = cursor.fetchall()
    nd, nm = len(_D_NAMES), len(_M_NAMES)
    entries: dict[int, QueueDomain] = {}
    for row in rows:
        entry = entries.get(row[0])
        if entry is None:
            entry = QueueDomain.from_db("default", _D_NAMES, row[:nd])
            entry.message = QueuedMessage.from_db("default", _M_NAMES, row[nd : nd + nm])
            entry.due = []
            entries[entry.pk] = entry
        if row[nd + nm] is not None:
            entry.due.append(QueueRecipient.from_db("default", _R_NAMES, row[nd + nm :]))
    return claim_id, list(entries.values())


def claim_next() -> tuple[int, uuid.UUID] | None:
    """Take one due entry (tests and tools; workers take batches)."""
    claim_id, taken = claim_batch(1)
    if not taken:
        return None
    return QueueDomain.objects.get(claim_id=claim_id).pk, claim_id


def queue_running() -> bool:
    return not QueueControl.objects.filter(running=False).exists()


def _load(claim_id: uuid.UUID, domain_id: int | None = None) -> list[QueueDomain]:
    """The entries held under `claim_id`, with message and scheduled recipients (2 queries)."""
    entries = QueueDomain.objects.filter(claim_id=claim_id, status=Status.SCHEDULED)
    if domain_id is not None:
        entries = entries.filter(pk=domain_id)
    due = QueueRecipient.objects.filter(status=Status.SCHEDULED).order_by("id")
    return list(
        entries.select_related("message")
        .prefetch_related(Prefetch("recipients", queryset=due, to_attr="due"))
        .order_by("next_retry", "id")
    )


# --- one delivery ---------------------------------------------------------------------


def deliver(domain_id: int | None = None, *, drain: bool = True) -> int:
    """Deliver entry `domain_id` (if claimable), then, with `drain`, other due entries in
    batches, up to DRAIN_LIMIT; the number delivered. Asks for a fresh task when more
    may be due."""
    done = 0
    if drain:
        _wake_taken()
    if domain_id is not None:
        claim_id = claim(domain_id)
        if claim_id is not None:
            done += _deliver_held(claim_id, domain_id)
    while drain and done < DRAIN_LIMIT:
        claim_id, entries = claim_and_load()
        if not entries:
            return done
        if len(entries) == CLAIM_BATCH:  # a backlog: let an idle worker join in
            wake_coalesced()
        done += _deliver_loaded(claim_id, entries)
    if drain:
        wake(None)  # more may be due: continue in a fresh task
    return done


def _deliver_held(claim_id: uuid.UUID, domain_id: int | None = None) -> int:
    """Deliver every entry held under `claim_id`, one after the other; each outcome is
    recorded as soon as it is known. The lease is renewed as the batch goes, and an entry
    whose lease could not be renewed (another worker has it now) is left alone."""
    return _deliver_loaded(claim_id, _load(claim_id, domain_id))


def _deliver_loaded(claim_id: uuid.UUID, entries: list[QueueDomain]) -> int:
    renewed = time.monotonic()
    ours = {e.pk for e in entries}
    done = 0
    for entry in entries:
        if time.monotonic() - renewed > lease().total_seconds() / 3:
            ours = _renew_all(claim_id)
            renewed = time.monotonic()
        if entry.pk not in ours:
            continue
        deliver_entry(entry, claim_id)
        done += 1
    return done


def _renew_all(claim_id: uuid.UUID) -> set[int]:
    now = timezone.now()
    held = QueueDomain.objects.filter(
        claim_id=claim_id, status=Status.SCHEDULED, lease_expires_at__gt=now
    )
    held.update(lease_expires_at=now + lease())
    return set(
        QueueDomain.objects.filter(claim_id=claim_id, status=Status.SCHEDULED).values_list(
            "pk", flat=True
        )
    )


def deliver_claimed(domain_id: int, claim_id: uuid.UUID) -> None:
    """Deliver one entry already claimed (with `claim`) under `claim_id`."""
    for entry in _load(claim_id, domain_id):
        deliver_entry(entry, claim_id)


def deliver_entry(entry: QueueDomain, claim_id: uuid.UUID) -> None:
    recipients = entry.due
    results: dict[int, Result] | None = None
    tls: bool | None = None
    try:
        if recipients:
            emit("delivery.attempt", trace_of(entry.message_id), domain=entry.name)
            results, tls = _attempt(entry, recipients)
        else:
            results = {}
    except Exception as exc:  # a bug or a broken blob: retry later, say why
        log.exception("delivery of queue entry %s failed", entry.pk)
        text = f"Internal error: {str(exc) or type(exc).__name__}"[:500]
        results = {r.pk: Result(TEMPORARY, None, text) for r in recipients}
    finally:
        if results is None:  # interrupted: hand the entry back untouched
            QueueDomain.objects.filter(pk=entry.pk, claim_id=claim_id).update(
                lease_expires_at=None, worker=""
            )
        else:
            # Nothing between the remote 250 and this: a kill in between re-delivers.
            record(entry, claim_id, recipients, results, tls=tls)
            _record_tls_outcomes()
            emit_outcomes(entry, recipients, results)


def trace_of(message_id: int) -> str:
    """Telemetry: one trace per queued message, all its attempts and DSNs."""
    return f"delivery-{message_id}"


def emit_outcomes(
    entry: QueueDomain, recipients: list[QueueRecipient], results: dict[int, Result]
) -> None:
    """One telemetry event per recipient's outcome (delivery time since it was queued)."""
    trace, now = trace_of(entry.message_id), timezone.now()
    for r in recipients:
        res = results.get(r.pk)
        if res is None:
            continue
        kind = OUTCOME_EVENTS.get(res.kind, "delivery.deferred")
        extra = {"deliveryTime": (now - entry.message.created).total_seconds()}
        emit(kind, trace, to=r.address, code=res.code, response=(res.response or "")[:200],
             **(extra if res.kind == DELIVERED else {}))  # fmt: skip


OUTCOME_EVENTS = {DELIVERED: "delivery.delivered", PERMANENT: "delivery.failed"}


def _attempt(entry: QueueDomain, recipients: list[QueueRecipient]):
    from apps.store import blobs

    data = blobs.read(entry.message.blob_hash)
    store = _local_store()
    if _hosted(store, entry.name, recipients[0].address):
        return _deliver_locally(store, recipients, data, entry.message), None
    return _deliver_remotely(entry, recipients, data)


_hosted_cache: dict[str, tuple[float, bool]] = {}
HOSTED_CACHE_SECONDS = 10.0


def _hosted(store, domain: str, address: str) -> bool:
    """Whether `domain` is hosted here (its mail goes to the store), remembered for a few
    seconds: the answer costs queries and changes only when a domain is added or removed."""
    now = time.monotonic()
    cached = _hosted_cache.get(domain)
    if cached and cached[0] > now:
        return cached[1]
    hosted = store.resolve(address) is not None
    _hosted_cache[domain] = (now + HOSTED_CACHE_SECONDS, hosted)
    return hosted


def clear_hosted_cache() -> None:
    _hosted_cache.clear()


def _local_store():
    from apps.store import recipients as store  # imported late: the store imports the queue

    return store


def _deliver_locally(
    store, recipients: list[QueueRecipient], data: bytes, message: QueuedMessage | None = None
) -> dict[int, Result]:
    """Into the store's mailboxes: an unknown address fails (550 5.1.1), a full mailbox is
    tried again later (452 4.2.2) until the message expires. A list's members whose
    mailbox is full are named in a failure DSN to the sender while the others get the
    message; its external members and forwarding addresses get a copy through the queue
    (return path SRS-rewritten)."""
    unknown, full = store.UnknownRecipient, store.QuotaExceeded
    results = {}
    for rcpt in recipients:
        try:
            resolution = store.resolve(rcpt.address)
            if resolution is None or not resolution.known:
                raise unknown(rcpt.address)
            delivered = store.deliver_resolutions([resolution], data)
            passed_on = bool(delivered.stored or delivered.reports or resolution.forward_to)
            if delivered.over_quota and not passed_on:
                raise full(delivered.over_quota)
            if message is not None:
                _pass_on_locally(message, rcpt.address, resolution, delivered, data)
        except unknown:
            results[rcpt.pk] = Result(
                PERMANENT, 550, f"550 5.1.1 <{rcpt.address}>: Recipient address rejected"
            )
            continue
        except full:
            results[rcpt.pk] = Result(TEMPORARY, 452, f"452 4.2.2 <{rcpt.address}>: Mailbox full")
            continue
        except Exception as exc:
            log.warning("local delivery to %s failed", rcpt.address, exc_info=True)
            results[rcpt.pk] = Result(TEMPORARY, 451, f"451 4.3.0 {exc}"[:500])
            continue
        if delivered.stored or delivered.reports or resolution.forward_to:
            results[rcpt.pk] = Result(DELIVERED, 250, "250 2.0.0 Delivered to the local mailbox")
        else:
            results[rcpt.pk] = Result(
                PERMANENT, 550, f"550 5.1.1 <{rcpt.address}>: Recipient address rejected"
            )
    return results


def _pass_on_locally(message: QueuedMessage, address: str, resolution, delivered, data) -> None:
    """The forwards of a hosted recipient, and the DSN naming its members left out."""
    from apps.queue import srs
    from apps.queue.services import enqueue

    if resolution.forward_to:
        return_path = message.return_path
        if resolution.domain is not None:
            return_path = srs.rewrite_sender(return_path, forwarding_domain=resolution.domain.name)
        # The recipient's tenant forwards (its mailbox's forwarding address, its list's
        # external members), as on the MX path: in the sender's tenant's queue its admin
        # would read where another tenant's mail goes.
        domain = resolution.domain
        enqueue(
            return_path=return_path,
            recipients=resolution.forward_to,
            data=data,
            tenant_id=domain.tenant_id if domain is not None else message.tenant_id,
        )
    if delivered.over_quota:
        send_over_quota_dsn(
            to=message.return_path,
            left_out=[(address, p) for p in delivered.over_quota],
            original=data[: 64 * 1024],
            arrival=message.created,
            tenant_id=message.tenant_id,
        )


def send_over_quota_dsn(
    *, to: str, left_out: list, original: bytes, arrival: datetime, tenant_id: int | None
) -> QueuedMessage | None:
    """A failure DSN (RFC 3464) to `to` naming each list member whose mailbox was full:
    `left_out` holds (the address the sender used, the member's Principal); the member's
    primary address is the Final-Recipient, the list's the Original-Recipient. None for a
    null sender."""
    if not left_out or not to:
        return None
    from apps.accounts.models import PrincipalEmail

    primary = dict(
        PrincipalEmail.objects.filter(
            principal__in=[p for _, p in left_out], position=0
        ).values_list("principal_id", "address")
    )
    reports = []
    for address, principal in left_out:
        member = primary.get(principal.pk) or address
        text = f"Mailbox full: the message would exceed the quota of <{member}>"
        if member.lower() != address.lower():  # else: an account that also forwards
            text += f" (a member of <{address}>)"
        reports.append(
            dsn.RecipientReport(member, None, text, original_recipient=address, status="5.2.2")
        )
    return send_report(
        to=to, reports=reports, original=original, arrival=arrival, tenant_id=tenant_id
    )


# TLS outcomes for our TLS-RPT reports (RFC 8460 counts sessions): one per pooled session
# and recipient domain, written after the delivery's own outcome (see deliver_entry).
_tls_reported: set[tuple[int, str]] = set()
_tls_pending: list[dict] = []


def _record_tls_outcomes() -> None:
    from apps.reports.outgoing import record_tls_outcome  # reports sits above the queue

    if len(_tls_reported) > 10_000:
        _tls_reported.clear()
    while _tls_pending:
        try:
            record_tls_outcome(**_tls_pending.pop(0))
        except Exception:  # a report's statistics never hold up mail
            log.warning("could not record a TLS outcome", exc_info=True)


def _deliver_remotely(entry: QueueDomain, recipients: list[QueueRecipient], data: bytes):
    def all_(kind, code, text, mta=""):
        return {r.pk: Result(kind, code, text, mta) for r in recipients}

    try:
        exchanges = remote.lookup_mx(entry.name)
    except remote.PermanentFailure as exc:
        return all_(PERMANENT, exc.code, f"{exc.code} {exc.status} {exc}"), None
    except remote.TemporaryFailure as exc:
        return all_(TEMPORARY, None, str(exc)), None

    port = settings.MAILADMIN_SMTP_REMOTE_PORT
    mail_from = entry.message.return_path
    addresses = [r.address for r in recipients]
    errors = []
    sts = _sts_policy(entry.name)
    for exchange in exchanges:
        if sts is not None and sts.mode == "enforce" and not sts.matches(exchange.host):
            detail = f"{exchange.host} is not an MX host of the domain's MTA-STS policy"
            _tls_pending.append(
                dict(
                    recipient_domain=entry.name,
                    mx_host=exchange.host,
                    success=False,
                    result_type="validation-failure",
                    policy_type="sts",
                    policy_string=sts.strings(),
                    additional_info=detail,
                )
            )
            errors.append(f"{exchange.host}: MTA-STS: {detail}")
            continue
        need = _tls_requirement(exchange.host, port, sts)
        policy_type = need.kind if need else "no-policy-found"
        policy_string = list(need.strings) if need else []
        for address in exchange.addresses:
            try:
                sent = remote.send(
                    address,
                    port,
                    mail_from=mail_from,
                    recipients=addresses,
                    data=data,
                    server_name=exchange.host,
                    require=need,
                )
            except tls_policy.PolicyFailure as exc:
                _tls_pending.append(
                    dict(
                        recipient_domain=entry.name,
                        mx_host=exchange.host,
                        success=False,
                        result_type=exc.result_type,
                        policy_type=policy_type,
                        policy_string=policy_string,
                        receiving_ip=address,
                        additional_info=exc.detail,
                    )
                )
                label = "DANE" if exc.requirement.kind == "tlsa" else "MTA-STS"
                errors.append(f"{exchange.host}[{address}]:{port}: {label}: {exc.detail}")
                _renew(entry)
                continue
            except (OSError, smtplib.SMTPException) as exc:
                errors.append(f"{exchange.host}[{address}]:{port}: {exc or type(exc).__name__}")
                _renew(entry)
                continue
            if (sent.session, entry.name) not in _tls_reported:  # once per session
                _tls_reported.add((sent.session, entry.name))
                _tls_pending.append(
                    {
                        "recipient_domain": entry.name,
                        "mx_host": exchange.host,
                        "success": sent.tls and not sent.tls_failure,
                        "result_type": sent.tls_failure,
                        "policy_type": policy_type,
                        "policy_string": policy_string,
                        "receiving_ip": address,
                        "additional_info": sent.tls_detail,
                    }
                )
            results = {}
            for rcpt in recipients:
                reply = sent.replies[rcpt.address]
                kind = (
                    DELIVERED
                    if 200 <= reply.code < 300
                    else TEMPORARY
                    if reply.code < 500
                    else PERMANENT
                )
                results[rcpt.pk] = Result(kind, reply.code, str(reply)[:1000], exchange.host)
            return results, sent.tls
    text = "Connection failed: " + "; ".join(errors)
    return all_(TEMPORARY, None, text[:1000]), None


def _sts_policy(domain: str) -> tls_policy.StsPolicy | None:
    """The domain's MTA-STS policy (None: none, or verified TLS is switched off). A
    published policy we could not fetch is recorded for TLS-RPT (once per lookup: they
    are kept a minute); delivery goes on."""
    if not settings.MAILADMIN_QUEUE_TLS_POLICIES:
        return None
    found = tls_policy.sts_policy(domain)
    if found.error is not None and found.fresh:  # once per lookup, not per message
        from apps.reports.outgoing import record_tls_outcome

        record_tls_outcome(
            recipient_domain=domain,
            mx_host="",
            success=False,
            result_type=found.error.result_type,
            policy_type="sts",
            additional_info=str(found.error),
        )
    return found.policy


def _tls_requirement(host: str, port: int, sts) -> tls_policy.Requirement | None:
    if not settings.MAILADMIN_QUEUE_TLS_POLICIES:
        return None
    return tls_policy.requirement(host, port, sts)


def _renew(entry: QueueDomain) -> None:
    QueueDomain.objects.filter(pk=entry.pk, claim_id=entry.claim_id).update(
        lease_expires_at=timezone.now() + lease()
    )


# --- recording the outcome --------------------------------------------------------------


def record(
    entry: QueueDomain,
    claim_id: uuid.UUID,
    recipients: list[QueueRecipient],
    results: dict[int, Result],
    *,
    tls: bool | None = None,
) -> None:
    """Write the outcome under the claim: recipients, the domain's schedule, the message's
    status and the failure DSN, in one transaction."""
    now = timezone.now()
    temporary = [r for r in recipients if results[r.pk].kind == TEMPORARY]
    expired = bool(temporary) and now >= entry.expires
    if expired:
        for r in temporary:
            old = results[r.pk]
            results[r.pk] = Result(
                PERMANENT,
                old.code,
                f"Delivery time expired; last error: {old.response}"[:1000],
                old.remote_mta,
            )
        temporary = []
    fields: dict = {"lease_expires_at": None, "worker": ""}
    if tls is not None:
        fields["tls"] = tls
    last = next((results[r.pk].response for r in temporary), "")
    if temporary:
        retry_num = entry.retry_num + 1
        fields.update(
            retry_num=retry_num,
            next_retry=min(now + retry_delay(retry_num), entry.expires),
            last_error=last,
        )
    else:
        kinds = {results[r.pk].kind for r in recipients}
        fields["status"] = Status.FAILED if PERMANENT in kinds else Status.DELIVERED
        if PERMANENT in kinds:
            fields["last_error"] = next(
                results[r.pk].response for r in recipients if results[r.pk].kind == PERMANENT
            )
    groups: dict[tuple, list[int]] = defaultdict(list)
    for r in recipients:
        res = results[r.pk]
        status = {DELIVERED: Status.DELIVERED, PERMANENT: Status.FAILED}.get(
            res.kind, Status.SCHEDULED
        )
        groups[(status, res.code, res.response)].append(r.pk)
    failed = [r for r in recipients if results[r.pk].kind == PERMANENT]
    if (
        connection.vendor == "postgresql"
        and entry.message.domain_count == 1
        and "status" in fields
        and len(groups) == 1
        and not (failed and entry.message.return_path)
    ):
        _record_in_one_statement(entry, claim_id, fields, next(iter(groups)), now)
        return
    with transaction.atomic():
        owned = QueueDomain.objects.filter(
            pk=entry.pk, claim_id=claim_id, status=Status.SCHEDULED
        ).update(**fields)
        if not owned:
            log.warning("queue entry %s: claim lost, outcome not recorded", entry.pk)
            return
        for (status, code, response), ids in groups.items():
            QueueRecipient.objects.filter(pk__in=ids, status=Status.SCHEDULED).update(
                status=status, code=code, response=response, updated=now
            )
        if "status" in fields:
            if entry.message.domain_count == 1:
                QueuedMessage.objects.filter(pk=entry.message_id).update(status=fields["status"])
            else:
                message_settle(entry.message_id)
        if failed and entry.message.return_path:
            send_dsn(
                entry.message,
                [
                    dsn.RecipientReport(
                        r.address,
                        results[r.pk].code,
                        results[r.pk].response,
                        results[r.pk].remote_mta,
                    )
                    for r in failed
                ],
                now=now,
            )


# The outcome is committed without waiting for the WAL flush (synchronous_commit off for
# this transaction only): a database crash may forget the last outcomes, so those messages
# are delivered again (a duplicate, as SMTP allows), never lost. Mail accepted into the
# queue (enqueue) keeps the full durable commit.
_ONE_STATEMENT = """
WITH s AS (
    SELECT set_config('synchronous_commit', 'off', true)
), d AS (
    UPDATE queue_queuedomain
    SET status = %(status)s, lease_expires_at = NULL, worker = '', tls = %(tls)s,
        last_error = %(last_error)s
    WHERE id = %(id)s AND claim_id = %(claim_id)s AND status = 'scheduled'
    RETURNING id, message_id
), r AS (
    UPDATE queue_queuerecipient
    SET status = %(rcpt_status)s, code = %(code)s, response = %(response)s, updated = %(now)s
    WHERE domain_id IN (SELECT id FROM d) AND status = 'scheduled'
    RETURNING 1
)
UPDATE queue_queuedmessage SET status = %(status)s
WHERE id IN (SELECT message_id FROM d) AND (SELECT count(*) FROM r) >= 0
    AND (SELECT count(*) FROM s) = 1
"""


def _record_in_one_statement(
    entry: QueueDomain, claim_id: uuid.UUID, fields: dict, group: tuple, now: datetime
) -> None:
    """PostgreSQL, a message of one domain whose recipients all ended alike (the common
    case): domain, recipients and message in one fenced statement, one round trip."""
    rcpt_status, code, response = group
    with connection.cursor() as cursor:
        cursor.execute(
            _ONE_STATEMENT,
            {
                "status": fields["status"],
                "tls": fields.get("tls", entry.tls),
                "last_error": fields.get("last_error", entry.last_error),
                "id": entry.pk,
                "claim_id": claim_id,
                "rcpt_status": rcpt_status,
                "code": code,
                "response": response,
                "now": now,
            },
        )
        if cursor.rowcount != 1:
            log.warning("queue entry %s: claim lost, outcome not recorded", entry.pk)


def message_settle(message_id: int) -> None:
    """Once no domain is scheduled, the message takes its outcome (failed > cancelled >
    delivered)."""
    statuses = set(
        QueueDomain.objects.filter(message_id=message_id).values_list("status", flat=True)
    )
    if Status.SCHEDULED in statuses:
        status = Status.SCHEDULED
    else:
        status = next(
            s for s in (Status.FAILED, Status.CANCELLED, Status.DELIVERED) if s in statuses
        )
    QueuedMessage.objects.filter(pk=message_id).exclude(status=status).update(status=status)


def send_dsn(
    message: QueuedMessage,
    reports: list[dsn.RecipientReport],
    *,
    now: datetime,
    delayed: bool = False,
    retry_until: datetime | None = None,
) -> QueuedMessage | None:
    """Queue a DSN to the message's return path, from the null sender; none for a null
    return path (no bounce of a bounce)."""
    if not message.return_path:
        return None
    emit("delivery.dsn-sent", trace_of(message.pk), to=message.return_path, delayed=delayed)
    from apps.store import blobs

    try:
        original = blobs.read(message.blob_hash, limit=64 * 1024)
    except FileNotFoundError:
        original = b""
    return send_report(
        to=message.return_path,
        reports=reports,
        original=original,
        arrival=message.created,
        tenant_id=message.tenant_id,
        now=now,
        delayed=delayed,
        retry_until=retry_until,
    )


def send_report(
    *,
    to: str,
    reports: list[dsn.RecipientReport],
    original: bytes,
    arrival: datetime,
    tenant_id: int | None,
    now: datetime | None = None,
    delayed: bool = False,
    retry_until: datetime | None = None,
) -> QueuedMessage | None:
    """Queue a DSN to `to` from the null sender. A return path that is one of our SRS
    addresses goes straight to the sender it stands for (an invalid one gets nothing)."""
    from apps.queue import srs
    from apps.queue.services import enqueue

    if not to:
        return None
    if srs.is_srs(to):
        try:
            to = srs.unwrap(to)
        except srs.SrsError as exc:
            log.warning("no DSN to <%s>: %s", to, exc)
            return None
    now = now or timezone.now()
    data = dsn.build(
        hostname=settings.MAILADMIN_HOSTNAME,
        to=to,
        recipients=reports,
        original=original,
        arrival=arrival,
        now=now,
        delayed=delayed,
        retry_until=retry_until,
    )
    return enqueue(return_path="", recipients=[to], data=data, tenant_id=tenant_id)


# --- waking workers and the sweep -------------------------------------------------------


def wake(domain_id: int | None) -> None:
    """Ask a delivery worker (by task name) to deliver `domain_id`, or whatever is due."""
    from mailadmin.celery import app

    app.send_task("queue.deliver", args=[domain_id])


# Wake-ups are coalesced: a burst of new entries sends one task, not one each (a task costs
# the sender a broker write and a worker a Celery round and two queries, for an entry the
# task before it has usually delivered already). A pending mark in the shared cache says a
# wake-up is on its way; the worker clears it *before* claiming, so an entry committed
# before a failed `add` is seen by that worker's claim, and one committed after the clear
# sends a wake-up of its own. The mark expires by itself (a worker killed before clearing
# it holds back wake-ups for WAKE_PENDING_SECONDS at most; the sweep covers the rest).
WAKE_PENDING_SECONDS = 5


def _wake_key() -> str:
    from mailadmin.celery import app

    queue = app.amqp.router.route({}, "queue.deliver").get("queue")
    return f"queue:wake-pending:{getattr(queue, 'name', queue)}"


class _Marks:
    """The wake-up mark's store: the default cache, except that a Redis cache is reached
    through one client per process (Django's RedisCache builds a new client object on
    each call, about a millisecond of CPU: more than the rest of a wake-up check). Same
    keys and values as the cache's own `add`/`delete`, so both ways interoperate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: tuple[tuple[int, str], object] | None = None

    def _redis(self):
        from django.core.cache import caches
        from django.core.cache.backends.redis import RedisCache

        backend = caches["default"]
        if not isinstance(backend, RedisCache):
            return None
        url = backend._servers[0]
        with self._lock:
            if self._client is None or self._client[0] != (os.getpid(), url):  # forked, moved
                import redis

                self._client = ((os.getpid(), url), redis.Redis.from_url(url))
            return self._client[1]

    def add(self, key: str, timeout: int) -> bool:
        from django.core.cache import cache

        client = self._redis()
        if client is None:
            return cache.add(key, 1, timeout)
        return bool(client.set(cache.make_and_validate_key(key), 1, nx=True, ex=timeout))

    def delete(self, key: str) -> None:
        from django.core.cache import cache

        client = self._redis()
        if client is None:
            cache.delete(key)
        else:
            client.delete(cache.make_and_validate_key(key))


_marks = _Marks()


def wake_coalesced() -> None:
    """Wake a worker to deliver whatever is due, unless a wake-up is already on its way."""
    try:
        if not _marks.add(_wake_key(), WAKE_PENDING_SECONDS):
            return
    except Exception:  # no cache: wake anyway
        log.warning("wake-up mark unavailable", exc_info=True)
    wake(None)


def _wake_taken() -> None:
    """A worker is about to claim: wake-ups sent from now on are new work."""
    try:
        _marks.delete(_wake_key())
    except Exception:
        log.warning("wake-up mark unavailable", exc_info=True)


def wake_on_commit(domain_ids: list[int]) -> None:
    if not domain_ids:
        return

    def send() -> None:
        try:
            wake_coalesced()
        except Exception:  # the sweep sends it again; the database holds the work
            log.warning("could not wake a delivery worker", exc_info=True)

    transaction.on_commit(send)


@dataclass(frozen=True)
class Swept:
    woken: int = 0
    delay_notices: int = 0
    sampled: bool = False


def sweep(*, now: datetime | None = None, grace: timedelta = LOST_WAKEUP_GRACE) -> Swept:
    """Wake workers for entries due longer than `grace` (their wake-up was lost, or their
    worker died: lapsed lease); send delay DSNs; record the queue size."""
    now = now or timezone.now()
    woken = 0
    if queue_running():
        free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
        due = QueueDomain.objects.filter(
            free, status=Status.SCHEDULED, next_retry__lte=now - grace
        ).order_by("next_retry")
        ids = list(due.values_list("pk", flat=True)[:SWEEP_BATCH])
        lapsed = QueueDomain.objects.filter(
            status=Status.SCHEDULED, lease_expires_at__lt=now
        ).values_list("pk", flat=True)[:SWEEP_BATCH]
        ids = list(dict.fromkeys([*ids, *lapsed]))
        for domain_id in ids:
            wake(domain_id)
        woken = len(ids)
    notices = _delay_notices(now)
    sampled = _sample(now)
    _prune(now)
    return Swept(woken=woken, delay_notices=notices, sampled=sampled)


def _delay_notices(now: datetime) -> int:
    sent = 0
    due = QueueDomain.objects.filter(status=Status.SCHEDULED, next_notify__lte=now).select_related(
        "message"
    )[:SWEEP_BATCH]
    for entry in due:
        with transaction.atomic():
            taken = QueueDomain.objects.filter(
                pk=entry.pk, next_notify=entry.next_notify, status=Status.SCHEDULED
            ).update(next_notify=None)
            if not taken or not entry.message.return_path:
                continue
            waiting = entry.recipients.filter(status=Status.SCHEDULED)
            reports = [
                dsn.RecipientReport(r.address, r.code, r.response or entry.last_error)
                for r in waiting
            ]
            if reports:
                send_dsn(entry.message, reports, now=now, delayed=True, retry_until=entry.expires)
                sent += 1
    return sent


def _prune(now: datetime) -> int:
    """Finished messages are kept MAILADMIN_QUEUE_KEEP_DAYS for their pages, then deleted."""
    keep = timedelta(days=settings.MAILADMIN_QUEUE_KEEP_DAYS)
    old = QueuedMessage.objects.filter(status__in=FINAL, created__lt=now - keep).order_by("created")
    ids = list(old.values_list("pk", flat=True)[:SWEEP_BATCH])
    return QueuedMessage.objects.filter(pk__in=ids).delete()[0] if ids else 0


def _sample(now: datetime) -> bool:
    if QueueSample.objects.filter(tenant=None, at__gt=now - SAMPLE_EVERY).exists():
        return False
    per_tenant = (
        QueuedMessage.objects.filter(status=Status.SCHEDULED)
        .values("tenant_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    rows = [QueueSample(tenant=None, at=now, size=0)]
    for row in per_tenant:
        rows[0].size += row["n"]
        if row["tenant_id"] is not None:
            rows.append(QueueSample(tenant_id=row["tenant_id"], at=now, size=row["n"]))
    QueueSample.objects.bulk_create(rows)
    QueueSample.objects.filter(at__lt=now - KEEP_SAMPLES).delete()
    return True


__all__ = ["FINAL", "claim", "deliver", "record", "sweep", "wake"]
