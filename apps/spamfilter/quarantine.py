"""The quarantine: what the inbound MX holds back instead of delivering (the filter's
action "quarantine"), per mailbox, or per domain for the mailboxes whose spam settings say
`sendtodomainquarantine`.

- `quarantine_store` is the MX's call (inside its delivery transaction): one row per
  recipient mailbox, the bytes a blob of the store, the score and the tags that caused it.
- Reads are scoped through `quarantine_visible`: with `quarantine-list` (or, to act,
  `quarantine-release`/`-delete`) the actor's tenant's items, all for a superadmin;
  with only `manage-own-quarantine` (the built-in user role) the items held in the
  actor's own mailbox's quarantine (never its domain's); otherwise none. Held mail is
  private: `principal-get`/`-update` give no access to it.
- `quarantine_release` delivers an item to the recipient's INBOX through the store's
  delivery and trains that account's Bayes model as ham; `quarantine_delete` drops items.
  Both are audited per item and take a scoped queryset, so one call serves a single item
  and a bulk selection alike.
- `quarantine_purge` (retention) and `quarantine_digest_send` (a daily list of new items
  to each quarantine's owner) run as tasks on the shared base (apps.spamfilter.tasks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import BigIntegerField, Case, F, Q, QuerySet, When
from django.urls import reverse
from django.utils import timezone
from redis.exceptions import RedisError

from apps.accounts.emails import (
    InvalidAddress,
    domain_of,
    normalize_address,
    normalize_domain,
)
from apps.accounts.models import Principal, PrincipalEmail, PrincipalType
from apps.accounts.permissions import Perm
from apps.spamfilter import bayes
from apps.spamfilter.message import parse
from apps.spamfilter.models import MailboxSpamSetting, QuarantinedMessage
from apps.store import blobs
from apps.store.headers import parse_summary
from mailadmin.api.serializers import date_time_param
from mailadmin.audit import audit
from mailadmin.converters import is_id
from mailadmin.core.models import TaskRun
from mailadmin.core.progress import Outcome, Progress, task_run_start
from mailadmin.errors import NotFound, PermissionDenied, ValidationFailed
from mailadmin.tenancy import scope

logger = logging.getLogger(__name__)

# A bulk action acts on at most this many items (the ticked ones, or the first of all
# matching); the confirmation page says so.
MAX_BULK = 1000
# A digest names at most this many items (and says how many more there are).
DIGEST_MAX_ITEMS = 200
PURGE_TASK = "spamfilter.quarantine_purge"
DIGEST_TASK = "spamfilter.quarantine_digest"
BAYES_FORGET_TASK = "spamfilter.bayes_forget_deleted_run"
FILTER_NAMES = ("mailbox", "domain", "kind", "sender", "from", "to")


# --- the MX's write ---------------------------------------------------------------------


def _primary_addresses(mailbox_ids: Sequence[int]) -> dict[int, str]:
    rows = PrincipalEmail.objects.filter(principal_id__in=list(mailbox_ids)).order_by(
        "principal_id", "position"
    )
    found: dict[int, str] = {}
    for principal_id, address in rows.values_list("principal_id", "address"):
        found.setdefault(principal_id, address)
    return found


def quarantine_store(
    *,
    mailboxes: Sequence[Principal],
    data: bytes,
    sender: str,
    score: float,
    tags: dict[str, float],
    reasons: Sequence[str],
    peer_ip: str = "",
    queue_id: str = "",
    routed_to: Mapping[int, str] | None = None,
) -> list[QuarantinedMessage]:
    """Hold one copy of `data` (with the filter's headers) per mailbox: three queries
    whatever the number of mailboxes. Data-plane write (like store delivery): not audited.
    `routed_to` (mailbox id -> the RCPT address that reached it, a group's or a list's)
    names a mailbox that has no address of its own: never another RCPT of the message,
    which may be another tenant's (and a Bcc)."""
    if not mailboxes:
        return []
    ids = [m.pk for m in mailboxes]
    blob_hash = blobs.put(bytes(data))
    summary = parse_summary(data)
    addresses = _primary_addresses(ids)
    spam_settings = {s.mailbox_id: s for s in MailboxSpamSetting.objects.filter(mailbox_id__in=ids)}
    routed_to = routed_to or {}
    now = timezone.now()
    rows = []
    for mailbox in mailboxes:
        recipient = addresses.get(mailbox.pk) or routed_to.get(mailbox.pk) or mailbox.name
        domain = domain_of(recipient) if "@" in recipient else ""
        setting = spam_settings.get(mailbox.pk)
        kind, owner = QuarantinedMessage.MAILBOX, recipient
        if setting is not None and setting.send_to_domain_quarantine:
            # The domain's quarantine: its digest goes to the owner the settings name, or
            # (none named) to the domain's postmaster (RFC 5321 4.5.1).
            kind = QuarantinedMessage.DOMAIN
            owner = setting.quarantine_owner or (f"postmaster@{domain}" if domain else "")
        rows.append(
            QuarantinedMessage(
                tenant_id=mailbox.tenant_id,
                mailbox=mailbox,
                kind=kind,
                domain=domain,
                owner=owner,
                recipient=recipient,
                sender=sender[:320],
                from_address=summary.from_address[:320],
                subject=summary.subject,
                date=summary.date,
                message_id=summary.message_id,
                size=len(data),
                blob_hash=blob_hash,
                score=round(float(score), 2),
                tags={tag: round(float(value), 2) for tag, value in tags.items()},
                reasons=[str(r)[:500] for r in reasons][:50],
                peer_ip=peer_ip[:45],
                queue_id=queue_id[:64],
                received_at=now,
            )
        )
    return QuarantinedMessage.objects.bulk_create(rows)


# --- reads --------------------------------------------------------------------------------


# What each action needs over every item in reach; `manage-own-quarantine` does all three
# on the actor's own mailbox's items.
READ = Perm.QUARANTINE_LIST
RELEASE = Perm.QUARANTINE_RELEASE
DELETE = Perm.QUARANTINE_DELETE
OWN = Perm.MANAGE_OWN_QUARANTINE


def _own_mailbox_id(actor: Principal) -> int | None:
    """The mailbox whose quarantine is the actor's own: its account's, or for an API key
    its owner's (the key acts as its owner)."""
    if actor.type == PrincipalType.API_KEY:
        owner = actor.key_owner
        return owner.pk if owner is not None else None
    return actor.pk if actor.type == PrincipalType.INDIVIDUAL else None


def quarantine_visible(actor: Principal, permission: str = READ) -> QuerySet[QuarantinedMessage]:
    """The one scoping entry point, for one action (`permission`: READ, RELEASE, DELETE):
    the actor's tenant's items (all for a superadmin) when it holds `permission`; else
    the items of its own mailbox's quarantine (kind mailbox) when it holds OWN; else none.
    """
    items = scope(QuarantinedMessage.objects.all(), actor)
    if actor.has_permission(permission):
        return items
    own = _own_mailbox_id(actor) if actor.has_permission(OWN) else None
    if own is None:
        return items.none()
    return items.filter(mailbox_id=own, kind=QuarantinedMessage.MAILBOX)


def can_act(actor: Principal, permission: str) -> bool:
    """Whether the actor may act (RELEASE, DELETE) on some items: every one in reach, or
    its own (the console shows the buttons)."""
    return actor.has_permission(permission) or actor.has_permission(OWN)


def _stored(text: str, normalize) -> str:
    """An address or domain as items store it (bücher.example: xn--bcher-kva.example), or
    the text lower-cased when it is not one (a mailbox's name)."""
    try:
        return normalize(text)
    except InvalidAddress:
        return text.lower()


def parse_filters(params) -> dict:
    """The list's filters from a query string; a bad one is a 400 naming the field."""

    raw = {k: (params.get(k) or "").strip() for k in FILTER_NAMES}
    for name, value in raw.items():
        if "\x00" in value:  # PostgreSQL refuses it in a query: a 500 otherwise
            raise ValidationFailed(
                f"Invalid value for field {name}: Null characters are not allowed.", field=name
            )
    filters: dict = {}
    if raw["mailbox"]:
        filters["mailbox"] = _stored(raw["mailbox"], normalize_address)[:320]
    if raw["domain"]:
        filters["domain"] = _stored(raw["domain"], normalize_domain).strip(".")[:253]
    if raw["kind"]:
        if raw["kind"] not in (QuarantinedMessage.MAILBOX, QuarantinedMessage.DOMAIN):
            raise ValidationFailed(
                "Invalid value for field kind: must be mailbox or domain.", field="kind"
            )
        filters["kind"] = raw["kind"]
    if raw["sender"]:
        filters["sender"] = raw["sender"].lower()[:320]
    # Given but empty is refused like a bad date (the console leaves empty fields out).
    if params.get("from") is not None:
        filters["from"] = date_time_param(params.get("from"), "from")
    if params.get("to") is not None:
        filters["to"] = date_time_param(params.get("to"), "to", end=True)
    return filters


def quarantine_list(
    *, actor: Principal, filters: dict | None = None, permission: str = READ
) -> QuerySet:
    """Scoped items (for `permission`'s action) matching `filters` (from parse_filters),
    newest first."""
    items = quarantine_visible(actor, permission).select_related("tenant")
    filters = filters or {}
    mailbox = filters.get("mailbox")
    if mailbox:
        # The account's id read first (neither a join nor a subquery): PostgreSQL then
        # reads each of the three through its own index.
        accounts = Principal.objects.filter(type=PrincipalType.INDIVIDUAL, name=mailbox)
        ids = list(accounts.values_list("pk", flat=True)[:10])
        items = items.filter(Q(recipient=mailbox) | Q(owner=mailbox) | Q(mailbox_id__in=ids))
    if filters.get("domain"):
        items = items.filter(domain=filters["domain"])
    if filters.get("kind"):
        items = items.filter(kind=filters["kind"])
    if filters.get("sender"):
        items = items.filter(
            Q(sender__icontains=filters["sender"]) | Q(from_address__icontains=filters["sender"])
        )
    if filters.get("from"):
        items = items.filter(received_at__gte=filters["from"])
    if filters.get("to"):
        items = items.filter(received_at__lte=filters["to"])
    return items.order_by("-received_at", "-id")


def quarantine_get(*, actor: Principal, item_id, permission: str = READ) -> QuarantinedMessage:
    """One item the actor may see (or act on, for `permission`); NotFound for another
    tenant's, or another mailbox's when only its own is in reach (never 403: no leak)."""
    text = str(item_id)
    if not is_id(text):
        raise NotFound()
    visible = quarantine_visible(actor, permission)
    item = visible.select_related("tenant", "mailbox").filter(pk=int(text))
    found = item.first()
    if found is None:
        raise NotFound()
    return found


def headers_of(item: QuarantinedMessage, limit: int = 64 * 1024) -> str:
    """The header block of a held message (its first `limit` bytes at most)."""
    try:
        data = blobs.read(item.blob_hash, limit=limit)
    except blobs.BlobNotFound:
        return ""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    head = data if end < 0 else data[:end]
    return head.decode("utf-8", "replace")


# --- release and delete -------------------------------------------------------------------


@dataclass
class ActionResult:
    done: int = 0
    failed: list[str] = field(default_factory=list)  # one human line per item not done

    @property
    def message(self) -> str:
        return "; ".join(self.failed)


def _in_reach(actor: Principal, permission: str, items: QuerySet) -> list[int]:
    """The ids (at most MAX_BULK) of `items` the actor may act on with `permission`; a
    403 when it may act on none at all (neither `permission` nor OWN)."""
    if not can_act(actor, permission):
        raise PermissionDenied(permission)
    return _bounded(quarantine_visible(actor, permission).filter(pk__in=items.values("pk")))


def _audit(actor: Principal, action: str, item: QuarantinedMessage, **changes) -> None:
    audit(
        actor=actor,
        action=action,
        object_type="quarantined-message",
        object_id=str(item.pk),
        object_repr=f"{item.recipient}: {item.subject or '(no subject)'}"[:255],
        tenant_id=item.tenant_id,
        changes={
            "sender": item.sender,
            "recipient": item.recipient,
            "score": item.score,
            "kind": item.kind,
            **changes,
        },  # fmt: skip
    )


def _bounded(items: QuerySet) -> list[int]:
    return list(items.order_by("-received_at", "-id").values_list("pk", flat=True)[:MAX_BULK])


GONE = "no longer in the quarantine (released or deleted meanwhile)"


def _learn_ham(pk: int, data: bytes, mailbox_id: int) -> None:
    try:
        bayes.learn(parse(data), spam=False, scope=bayes.account_scope(mailbox_id))
    except RedisError:
        logger.warning("release of %s: Bayes unavailable, not trained", pk, exc_info=True)


def quarantine_release(*, actor: Principal, items: QuerySet) -> ActionResult:
    """Deliver each item (at most MAX_BULK) to its recipient's INBOX, with the next UID,
    train that account's Bayes model as ham, drop it from the quarantine and audit it.
    `items` are narrowed to those the actor may release (quarantine_visible: all in its
    reach, or its own mailbox's). Each item is its own transaction: one that can't be
    delivered (the mailbox is full, or disabled) is left in the quarantine and named in the
    result, the others go; so is one released or deleted meanwhile by another request
    (which holds its row lock: it is delivered once, trained once). Training waits for
    the commit."""
    from apps.store.encryption import copies_for
    from apps.store.services import deliver_stored, quota_exceeded

    ids = _in_reach(actor, RELEASE, items)
    result = ActionResult()
    for pk in ids:
        with transaction.atomic():
            item = (
                QuarantinedMessage.objects.select_for_update(of=("self",))
                .select_related("mailbox")
                .filter(pk=pk)
                .first()
            )
            if item is None:  # another request (a second click) got to it first
                result.failed.append(f"#{pk}: {GONE}")
                continue
            mailbox = item.mailbox
            try:
                data = blobs.read(item.blob_hash)
            except blobs.BlobNotFound:
                result.failed.append(f"{item.recipient}: the message's bytes are missing")
                continue
            if not mailbox.is_active:
                result.failed.append(f"{item.recipient}: the mailbox is disabled")
                continue
            # Held in clear for review; the mailbox gets it encrypted when it encrypts.
            copy = copies_for([mailbox], data)[mailbox.pk]
            if quota_exceeded(mailbox, len(copy)):
                result.failed.append(f"{item.recipient}: the mailbox is full")
                continue
            stored = deliver_stored(
                mailbox,
                blob_hash=item.blob_hash if copy is data else blobs.put(copy),
                size=len(copy),
                summary=parse_summary(data),
                folder="INBOX",
                flags=[],
            )
            # Redis is not undone by a rollback: train once the release is committed (a
            # retry of one rolled back trained twice); a failure then is no failed release.
            transaction.on_commit(partial(_learn_ham, pk, data, mailbox.pk), robust=True)
            _audit(actor, "spam-filter.quarantine-release", item, uid=stored.uid)
            item.delete()
            result.done += 1
    return result


def quarantine_release_item(*, actor: Principal, item: QuarantinedMessage) -> ActionResult:
    """Release one item the actor has read (quarantine_get). One that another request
    released or deleted since is out of reach by the time the release looks: it is named
    as gone, not answered "done 0" with no reason."""
    items = quarantine_visible(actor, RELEASE).filter(pk=item.pk)
    result = quarantine_release(actor=actor, items=items)
    if not result.done and not result.failed:
        result.failed.append(f"#{item.pk}: {GONE}")
    return result


def quarantine_delete(*, actor: Principal, items: QuerySet) -> ActionResult:
    """Drop each item (at most MAX_BULK) of `items` the actor may delete (as for release)
    from the quarantine, audited one by one. The blob stays on disk: blobs are shared by
    content (the store never deletes one a row drops)."""
    result = ActionResult()
    with transaction.atomic():
        ids = _in_reach(actor, DELETE, items)
        for item in QuarantinedMessage.objects.select_for_update().filter(pk__in=ids):
            _audit(actor, "spam-filter.quarantine-delete", item)
            result.done += 1
        QuarantinedMessage.objects.filter(pk__in=ids).delete()
    return result


# --- retention ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeOutcome:
    deleted: int
    finished: bool


def quarantine_purge(
    *,
    days: int | None = None,
    batch: int = 500,
    budget_seconds: float = 300.0,
    progress: Progress | None = None,
) -> PurgeOutcome:
    """Drop items held longer than `days` (MAILADMIN_QUARANTINE_RETENTION_DAYS; 0 keeps
    them), in batches by id under a time budget: what is left goes with the next run. As
    the store does, the rows (the blob references) go and the shared blobs stay."""
    days = settings.MAILADMIN_QUARANTINE_RETENTION_DAYS if days is None else days
    if days <= 0:
        return PurgeOutcome(0, True)
    cutoff = timezone.now() - timedelta(days=days)
    old = QuarantinedMessage.objects.filter(received_at__lt=cutoff)
    if progress is not None:
        progress.begin(old.order_by()[:100_000].count())
    started = time.monotonic()
    deleted = 0
    finished = True
    while True:
        ids = list(old.order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            break
        with transaction.atomic():
            deleted += QuarantinedMessage.objects.filter(id__in=ids).delete()[0]
        if progress is not None:
            progress.step(deleted, f"{deleted} item(s) older than {days} days deleted")
        if time.monotonic() - started > budget_seconds:
            finished = False
            break
    if deleted:
        audit(
            actor=None,
            action="spam-filter.quarantine-purge",
            object_type="quarantine",
            object_repr=f"older than {days} days",
            changes={"deleted": deleted, "cutoff": cutoff.isoformat()},
        )
        logger.info("quarantine purge: %s item(s) older than %s days", deleted, days)
    return PurgeOutcome(deleted, finished)


# --- the digest ---------------------------------------------------------------------------


def _digest_from() -> str:
    return settings.MAILADMIN_QUARANTINE_DIGEST_FROM or (
        f"noreply-quarantine@{settings.MAILADMIN_HOSTNAME}"
    )


def digest_message(owner: str, items: Sequence[QuarantinedMessage], more: int = 0) -> bytes:
    """A plain-text mail naming each item: when, from whom, to whom, subject, score, and
    the link to its page in the console (on MAILADMIN_CONSOLE_URL)."""
    console = settings.MAILADMIN_CONSOLE_URL
    message = EmailMessage()
    message["From"] = _digest_from()
    message["To"] = owner
    message["Date"] = format_datetime(timezone.now().astimezone(UTC))
    message["Message-ID"] = make_msgid(domain=settings.MAILADMIN_HOSTNAME)
    count = len(items) + more
    message["Subject"] = f"Quarantine digest: {count} new message{'s' if count != 1 else ''}"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
    lines = [
        f"{count} message(s) were held in quarantine for you since the last digest.",
        "Release them to the inbox or delete them in the console (Spam filter >",
        "Quarantine): your own mailbox's yourself, a domain's through an administrator;",
        f"they are deleted after {settings.MAILADMIN_QUARANTINE_RETENTION_DAYS} days.",
        f"Quarantine: {console}{reverse('spamfilter:quarantine')}",
        "",
    ]
    for item in items:
        lines += [
            f"#{item.pk}  {item.received_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC  "
            f"score {item.score:.2f}",
            f"  From:    {item.from_address or item.sender or '<>'}",
            f"  To:      {item.recipient}",
            f"  Subject: {item.subject or '(no subject)'}",
            f"  Open:    {console}{reverse('spamfilter:quarantine-detail', args=[item.pk])}",
            "",
        ]
    if more:
        lines.append(f"... and {more} more.")
    message.set_content("\n".join(lines) + "\n")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _send(owner: str, data: bytes, tenant_id: int | None) -> str:
    """Into the owner's INBOX when hosted here, else through the outbound queue; what was
    done, in words."""
    from apps.store.recipients import deliver_resolutions, resolve

    resolution = resolve(owner)
    if resolution is None:  # not a domain of ours: a remote owner
        from apps.queue.services import enqueue

        enqueue(return_path="", recipients=[owner], data=data, tenant_id=tenant_id)
        return "queued"
    if not resolution.known:
        return "no such mailbox"
    delivered = deliver_resolutions([resolution], data)
    return "delivered" if delivered.stored else "over quota"


def _send_to_mailbox(mailbox: Principal | None, data: bytes) -> str:
    """A mailbox quarantine's digest goes into that mailbox itself, never through its
    `owner` address: for a mailbox without an address of its own that is the group's or
    list's address that reached it (every member would read its held mail), and any
    address may have passed to another account since the item arrived."""
    from apps.store.recipients import deliver_to_mailboxes

    if mailbox is None:
        return "no such mailbox"
    if not mailbox.is_active:
        return "the mailbox is disabled"
    stored, _ = deliver_to_mailboxes([mailbox], data)
    return "delivered" if stored else "over quota"


def quarantine_digest_send(*, progress: Progress | None = None) -> dict[str, int]:
    """One digest per quarantine naming the items held since its last one (each item is
    named once: marked in the same transaction that delivers or queues the digest): a
    mailbox's own quarantine into that mailbox, a domain quarantine to its owner address.

    A domain quarantine's digest is per owner and tenant: any tenant may name any address
    as its quarantine's owner, and a digest queued for a remote owner is its tenant's
    queued message (raw bytes in its console), so it must never list another tenant's
    items."""
    # (owner, tenant, mailbox): the mailbox for a mailbox quarantine, None for a domain's.
    targets = list(
        QuarantinedMessage.objects.filter(digested_at__isnull=True)
        .exclude(owner="")
        .annotate(
            box=Case(
                When(kind=QuarantinedMessage.MAILBOX, then=F("mailbox_id")),
                default=None,
                output_field=BigIntegerField(),
            )
        )
        .order_by("owner", "tenant_id", "box")
        .values_list("owner", "tenant_id", "box")
        .distinct()[:10_000]
    )
    if progress is not None:
        progress.begin(len(targets))
    counts = {"owners": 0, "items": 0, "delivered": 0, "queued": 0, "undeliverable": 0}
    for done, (owner, tenant_id, box) in enumerate(targets, 1):
        with transaction.atomic():
            pending = QuarantinedMessage.objects.filter(
                owner=owner, tenant_id=tenant_id, digested_at__isnull=True
            )
            if box is None:
                pending = pending.filter(kind=QuarantinedMessage.DOMAIN)
            else:
                pending = pending.filter(kind=QuarantinedMessage.MAILBOX, mailbox_id=box)
            listed = list(pending.select_for_update().order_by("id")[:DIGEST_MAX_ITEMS])
            if not listed:
                continue
            # Every pending item is marked (and counted) at once, however many: the digest
            # names the first DIGEST_MAX_ITEMS and says how many more there are.
            held = pending.update(digested_at=timezone.now())
            try:
                normalized = normalize_address(owner)
            except InvalidAddress:
                normalized = ""
            more = max(held - len(listed), 0)
            if box is not None:
                mailbox = Principal.objects.filter(pk=box).first()
                data = digest_message(normalized or owner, listed, more=more)
                outcome = _send_to_mailbox(mailbox, data)
            elif normalized:
                data = digest_message(normalized, listed, more=more)
                outcome = _send(normalized, data, tenant_id)
            else:
                outcome = "no such mailbox"
        counts["owners"] += 1
        counts["items"] += held
        key = outcome if outcome in ("delivered", "queued") else "undeliverable"
        counts[key] += 1
        if key == "undeliverable":
            logger.warning("quarantine digest for %s not delivered: %s", owner, outcome)
        if progress is not None:
            progress.step(done, f"{owner}: {held} item(s), {outcome}")
    return counts


# --- runs (started by beat; carried out by apps.spamfilter.tasks) -------------------------


def quarantine_runs_start(*, day: date | None = None) -> list[TaskRun]:
    """Beat, daily: the retention purge and the digest, one run of each per day."""
    day = day or timezone.now().date()
    return [
        task_run_start(
            actor=None,
            kind=f"{PURGE_TASK}:{day:%Y-%m-%d}",
            title="Delete quarantined messages past their retention",
            task_name=PURGE_TASK,
            tenant_id=None,
        ),
        task_run_start(
            actor=None,
            kind=f"{DIGEST_TASK}:{day:%Y-%m-%d}",
            title="Send the quarantine digests",
            task_name=DIGEST_TASK,
            tenant_id=None,
        ),
    ]


def bayes_forget_run_start(*, day: date | None = None) -> TaskRun:
    """Beat, daily: one sweep a day of the Bayes models of deleted accounts (see
    bayes.forget_deleted_accounts), with the quarantine's other daily housekeeping."""
    day = day or timezone.now().date()
    return task_run_start(
        actor=None,
        kind=f"{BAYES_FORGET_TASK}:{day:%Y-%m-%d}",
        title="Purge the Bayes models of deleted accounts",
        task_name=BAYES_FORGET_TASK,
        tenant_id=None,
    )


def purge_outcome(outcome: PurgeOutcome) -> Outcome:
    more = "" if outcome.finished else " (more are left for the next run)"
    return Outcome(
        True,
        f"Deleted {outcome.deleted} quarantined message(s){more}.",
        {"deleted": outcome.deleted, "finished": outcome.finished},
    )


def digest_outcome(counts: dict[str, int]) -> Outcome:
    return Outcome(
        True,
        f"{counts['owners']} digest(s) for {counts['items']} item(s): {counts['delivered']} "
        f"delivered, {counts['queued']} queued, {counts['undeliverable']} undeliverable.",
        counts,
    )
