"""Store maintenance: the management API's purges, undelete, reindex and UID reset.

What each operation means here (README, "Store maintenance"):

- **purge account(s)**: what an IMAP server's expunge and retention do. Messages flagged
  `\\Deleted` are expunged; Trash and Junk messages received more than
  MAILADMIN_STORE_TRASH_DAYS / MAILADMIN_STORE_JUNK_DAYS ago are expunged too. Expunged
  messages move to DeletedMessage and can be undeleted for MAILADMIN_STORE_UNDELETE_DAYS;
  rows past that window are deleted for good (their blobs go with the blob purge).
- **purge blob store**: blob files no row references (stored, deleted-but-restorable, queued,
  quarantined messages) and older than MAILADMIN_STORE_BLOB_GRACE_MINUTES are deleted; see
  blobs.remove_unless_used for why a concurrent delivery never loses its blob.
- **purge data store**: expired rows: browser sessions, OAuth codes and tokens (with the
  login lockout rows), finished queue messages past MAILADMIN_QUEUE_KEEP_DAYS, finished
  task runs past 30 days, spent single-use stream tokens past their expiry. The audit
  log is kept (it is the record of who did what).
- **purge in-memory store**: expired cache entries (the submission rate counters, remembered
  devices) when the cache is the database; Redis expires its keys by itself.
- **reindex**: the store has no full-text index; this re-reads every message's blob and
  recomputes what the rows derive from it (size, From, Subject, Date, Message-ID), and
  counts messages whose blob is missing.
- **undelete**: lists and restores DeletedMessage rows (a restored message gets a new UID in
  its folder, the INBOX when the folder is gone).
- **reset UIDs**: a new UIDVALIDITY for each folder of the account and its messages renumbered
  1..n in their UID order (clients then resynchronise).

Long work is a TaskRun on the `maintenance` queue (apps.store.tasks), started here.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import Perm
from apps.accounts.principals.selectors import principal_get
from apps.store import blobs
from apps.store.headers import parse_summary
from apps.store.models import DeletedMessage, Folder, Message, SpecialUse
from apps.store.services import _next_uid, folders_ensure, new_uidvalidity
from mailadmin.audit import audit
from mailadmin.core.models import SpentToken, TaskRun
from mailadmin.core.progress import Outcome, Progress, task_run_start
from mailadmin.errors import NotFound, PermissionDenied, ServiceError, ValidationFailed

logger = logging.getLogger(__name__)

PURGE_ACCOUNTS_TASK = "store.purge_accounts"
PURGE_ACCOUNT_TASK = "store.purge_account"
PURGE_BLOB_TASK = "store.purge_blob"
PURGE_DATA_TASK = "store.purge_data"
PURGE_IN_MEMORY_TASK = "store.purge_in_memory"
REINDEX_TASK = "store.reindex"

DELETED_FLAG = "\\Deleted"
BATCH = 500
SCAN_BATCH = 2000
# Reindex reads this much of each blob: the header section is all the row derives from.
HEADER_READ = 1024 * 1024
# Above every UID a folder hands out (32 bits), below PositiveBigIntegerField's top.
UID_SHIFT = 2**40
MAX_UNDELETE_ITEMS = 1000


class SuperadminOnly(ServiceError):
    status = 403
    title = "Forbidden"


def _require(actor: Principal | None, permission: str, *, server_wide: bool = False) -> None:
    """The actor holds `permission` (None: the schedule, which may do everything); a
    server-wide operation also needs a superadmin (or a superadmin's key)."""
    if actor is None:
        return
    if not actor.has_permission(permission):
        raise PermissionDenied(permission)
    if server_wide and not actor.reaches_all_tenants:
        raise SuperadminOnly("Only a superadmin may do this: it acts on every tenant's data.")


def account_for(*, actor: Principal, account_id: str | int, permission: str) -> Principal:
    """An individual account the actor may act on: itself (an API key: its owner), or one
    of its tenant's when it may read principals. Another tenant's account is the same
    NotFound as a missing one."""
    _require(actor, permission)
    account = principal_get(actor=actor, id_or_name=account_id)
    if account.type != PrincipalType.INDIVIDUAL:
        raise NotFound(f"{str(account_id)[:100]} is not an account.")
    own = actor.acts_for
    if (own is None or account.pk != own.pk) and not actor.has_permission(Perm.PRINCIPAL_GET):
        raise NotFound()
    return account


def _budget() -> float:
    """Seconds a long run works before it stops and leaves the rest to the next run."""
    return float(settings.MAILADMIN_STORE_RUN_BUDGET_SECONDS)


def _resume_after(task_name: str, tenant_id: int | None) -> Any:
    """Where the previous run of this work stopped at its time budget (None: it finished,
    so this one starts from the beginning)."""
    previous = (
        TaskRun.objects.filter(task_name=task_name, tenant_id=tenant_id, finished_at__isnull=False)
        .order_by("-finished_at")
        .only("result")
        .first()
    )
    return (previous.result or {}).get("resumeAfter") if previous else None


def _audit_run(
    actor: Principal | None,
    action: str,
    what: str,
    *,
    tenant_id: int | None,
    changes: dict[str, Any],
) -> None:
    """The audit row of a run over the store (all of it, or a tenant's part): `what` it
    acted on and its counts."""
    audit(
        actor=actor,
        action=action,
        object_type="store",
        object_repr=what,
        tenant_id=tenant_id,
        changes=changes,
    )


# --- starting runs ------------------------------------------------------------------------


def _tenant_of(actor: Principal | None) -> int | None:
    if actor is None or actor.reaches_all_tenants:
        return None
    if actor.tenant_id is None:
        raise SuperadminOnly("Only a superadmin may do this.")
    return actor.tenant_id


def _tenant_run(actor: Principal | None, permission: str, kind: str, title: str, task: str):
    """A run over what the actor reaches: everything for a superadmin, their tenant's for a
    tenant admin (one run of each kind per tenant at a time)."""
    _require(actor, permission)
    tenant_id = _tenant_of(actor)
    suffix = f"-{tenant_id}" if tenant_id else ""
    return task_run_start(
        actor=actor,
        kind=f"{kind}{suffix}",
        title=title,
        task_name=task,
        tenant_id=tenant_id,
        arguments={"tenant_id": tenant_id},
    )


def purge_accounts_start(*, actor: Principal | None) -> TaskRun:
    """Purge every account the actor reaches."""
    return _tenant_run(
        actor, Perm.PURGE_ACCOUNT, "store-purge-accounts", "Purge all accounts", PURGE_ACCOUNTS_TASK
    )


def purge_account_start(*, actor: Principal, account_id: str | int) -> TaskRun:
    account = account_for(actor=actor, account_id=account_id, permission=Perm.PURGE_ACCOUNT)
    return task_run_start(
        actor=actor,
        kind=f"store-purge-account-{account.pk}",
        title=f"Purge account {account.name}",
        task_name=PURGE_ACCOUNT_TASK,
        tenant_id=account.tenant_id,
        arguments={"account_id": account.pk},
    )


def _server_run(actor: Principal | None, permission: str, kind: str, title: str, task: str):
    _require(actor, permission, server_wide=True)
    return task_run_start(
        actor=actor, kind=kind, title=title, task_name=task, tenant_id=None, arguments={}
    )


def purge_blob_start(*, actor: Principal | None) -> TaskRun:
    return _server_run(
        actor, Perm.PURGE_BLOB_STORE, "store-purge-blob", "Purge blob store", PURGE_BLOB_TASK
    )


def purge_data_start(*, actor: Principal | None) -> TaskRun:
    return _server_run(
        actor, Perm.PURGE_DATA_STORE, "store-purge-data", "Purge data store", PURGE_DATA_TASK
    )


def purge_in_memory_start(*, actor: Principal | None) -> TaskRun:
    return _server_run(
        actor,
        Perm.PURGE_IN_MEMORY_STORE,
        "store-purge-in-memory",
        "Purge in-memory store",
        PURGE_IN_MEMORY_TASK,
    )


def reindex_start(*, actor: Principal | None) -> TaskRun:
    """Reindex the mail the actor reaches."""
    return _tenant_run(
        actor, Perm.FTS_REINDEX, "store-reindex", "Reindex the mail store", REINDEX_TASK
    )


def scheduled_runs_start(*, blob: bool = False) -> list[TaskRun]:
    """Beat: the daily purges (a second call finds the runs under way)."""
    if blob:
        return [purge_blob_start(actor=None)]
    return [
        purge_accounts_start(actor=None),
        purge_data_start(actor=None),
        purge_in_memory_start(actor=None),
    ]


# --- expunge and the account purge --------------------------------------------------------


def _expunge(ids: list[int], now: datetime) -> int:
    """Move these messages to DeletedMessage, in one transaction. The rows are re-read
    locked, so two purges racing on one message move it once."""
    with transaction.atomic():
        rows = list(
            Message.objects.select_for_update(of=("self",))  # not the folders: deliveries
            .filter(pk__in=ids)
            .select_related("folder")
            .order_by("id")
        )
        if not rows:
            return 0
        DeletedMessage.objects.bulk_create(
            [
                DeletedMessage(
                    principal_id=m.principal_id,
                    folder_id=m.folder_id,
                    folder_name=m.folder.name,
                    uid=m.uid,
                    blob_hash=m.blob_hash,
                    size=m.size,
                    flags=[f for f in m.flags if f != DELETED_FLAG],
                    received_at=m.received_at,
                    from_name=m.from_name,
                    from_address=m.from_address,
                    subject=m.subject,
                    date=m.date,
                    message_id=m.message_id,
                    deleted_at=now,
                )
                for m in rows
            ]
        )
        return Message.objects.filter(pk__in=[m.pk for m in rows]).delete()[0]


def _chunks(ids: list[int], size: int = BATCH) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


@dataclass
class AccountPurge:
    expunged: int = 0  # flagged \Deleted
    expired: int = 0  # Trash / Junk past their retention
    purged: int = 0  # deleted for good, past the undelete window

    def add(self, other: AccountPurge) -> None:
        self.expunged += other.expunged
        self.expired += other.expired
        self.purged += other.purged


def _flagged_deleted(account_id: int) -> list[int]:
    """Ids of the account's messages flagged \\Deleted: by JSON containment where the
    database has it (PostgreSQL), else by reading the flags in batches (SQLite)."""
    mine = Message.objects.filter(principal_id=account_id)
    if connection.features.supports_json_field_contains:
        return list(mine.filter(flags__contains=[DELETED_FLAG]).values_list("pk", flat=True))
    found: list[int] = []
    last = 0
    while True:
        rows = list(mine.filter(pk__gt=last).order_by("pk").values_list("pk", "flags")[:SCAN_BATCH])
        if not rows:
            return found
        found += [pk for pk, flags in rows if isinstance(flags, list) and DELETED_FLAG in flags]
        last = rows[-1][0]


def account_purge(account_id: int, *, now: datetime | None = None) -> AccountPurge:
    """Expunge, expire Trash/Junk and drop deleted messages past the undelete window, for
    one account. Safe to repeat (what is gone stays gone)."""
    now = now or timezone.now()
    result = AccountPurge()
    for ids in _chunks(_flagged_deleted(account_id)):
        result.expunged += _expunge(ids, now)
    retention = {
        SpecialUse.TRASH: settings.MAILADMIN_STORE_TRASH_DAYS,
        SpecialUse.JUNK: settings.MAILADMIN_STORE_JUNK_DAYS,
    }
    for folder in Folder.objects.filter(principal_id=account_id, special_use__in=list(retention)):
        days = retention[folder.special_use]
        if days <= 0:
            continue
        old = Message.objects.filter(
            principal_id=account_id, folder=folder, received_at__lt=now - timedelta(days=days)
        )
        for ids in _chunks(list(old.values_list("pk", flat=True))):
            result.expired += _expunge(ids, now)
    window = timedelta(days=max(settings.MAILADMIN_STORE_UNDELETE_DAYS, 0))
    gone = DeletedMessage.objects.filter(principal_id=account_id, deleted_at__lte=now - window)
    while ids := list(gone.order_by("pk").values_list("pk", flat=True)[:BATCH]):
        result.purged += DeletedMessage.objects.filter(pk__in=ids).delete()[0]
    return result


def accounts_purge_run(
    *,
    actor: Principal | None,
    tenant_id: int | None,
    progress: Progress,
) -> Outcome:
    """Purge every mailbox (of one tenant), by account id under a time budget: a run that
    stops records where, and the next run (the next night's) goes on from there."""
    if actor is not None:
        _require(actor, Perm.PURGE_ACCOUNT)
        if _tenant_of(actor) != tenant_id:
            raise SuperadminOnly("Only a superadmin may purge every tenant's accounts.")
    inboxes = Folder.objects.filter(special_use=SpecialUse.INBOX)
    if tenant_id is not None:
        inboxes = inboxes.filter(principal__tenant_id=tenant_id)
    resume = _resume_after(PURGE_ACCOUNTS_TASK, tenant_id)
    if isinstance(resume, int):
        inboxes = inboxes.filter(principal_id__gt=resume)
    account_ids = list(inboxes.order_by("principal_id").values_list("principal_id", flat=True))
    progress.begin(len(account_ids))
    total = AccountPurge()
    started = time.monotonic()
    done = 0
    for done, account_id in enumerate(account_ids, start=1):
        total.add(account_purge(account_id))
        progress.step(done, _purge_message(total))
        if time.monotonic() - started > _budget():
            break
    finished = done == len(account_ids)
    _audit_run(
        actor,
        "store.purge-accounts",
        "all accounts" if tenant_id is None else "the tenant's accounts",
        tenant_id=tenant_id,
        changes={"accounts": done, **asdict(total)},
    )
    message = f"{done} account(s): {_purge_message(total)}"
    result: dict[str, Any] = {"accounts": done, **asdict(total)}
    if not finished:
        message += f"; stopped at the time budget, {len(account_ids) - done} left for the next run"
        result["resumeAfter"] = account_ids[done - 1]
    return Outcome(True, message, result)


def account_purge_run(*, actor: Principal | None, account_id: int, progress: Progress) -> Outcome:
    if actor is not None:  # the starter may have lost the right since
        account = account_for(actor=actor, account_id=account_id, permission=Perm.PURGE_ACCOUNT)
    else:
        account = Principal.objects.filter(pk=account_id).first()
        if account is None:
            return Outcome(False, "The account no longer exists.")
    progress.begin(1)
    result = account_purge(account.pk)
    progress.step(1, _purge_message(result))
    audit(
        actor=actor,
        action="store.purge-account",
        obj=account,
        tenant_id=account.tenant_id,
        changes=asdict(result),
    )
    return Outcome(True, f"{account.name}: {_purge_message(result)}", asdict(result))


def _purge_message(result: AccountPurge) -> str:
    return (
        f"{result.expunged} expunged (\\Deleted), {result.expired} expired from Trash/Junk, "
        f"{result.purged} deleted for good"
    )


# --- the blob purge -----------------------------------------------------------------------


def _blob_tables() -> list[QuerySet]:
    from apps.queue.models import QueuedMessage
    from apps.spamfilter.models import QuarantinedMessage

    return [
        Message.objects.all(),
        DeletedMessage.objects.all(),
        QueuedMessage.objects.all(),
        QuarantinedMessage.objects.all(),
    ]


def blobs_referenced(hashes: Iterable[str]) -> set[str]:
    """Which of `hashes` a stored, deleted, queued or quarantined message references."""
    wanted = list(hashes)
    found: set[str] = set()
    for table in _blob_tables():
        rest = [h for h in wanted if h not in found]
        if not rest:
            break
        found.update(table.filter(blob_hash__in=rest).values_list("blob_hash", flat=True))
    return found


def blob_referenced(blob_hash: str) -> bool:
    return bool(blobs_referenced([blob_hash]))


@dataclass
class BlobPurge:
    scanned: int = 0
    deleted: int = 0
    freed: int = 0  # bytes
    kept_recent: int = 0
    strays: int = 0


def blob_purge_run(
    *,
    actor: Principal | None,
    progress: Progress,
    grace_minutes: int | None = None,
) -> Outcome:
    """Mark and sweep over the blob directory, one fan-out directory (of 256) at a time:
    candidates older than the grace period are checked against every table in batches, and
    each unreferenced one is re-checked as it is removed (blobs.remove_unless_used)."""
    _require(actor, Perm.PURGE_BLOB_STORE, server_wide=True)
    grace = settings.MAILADMIN_STORE_BLOB_GRACE_MINUTES if grace_minutes is None else grace_minutes
    cutoff = time.time() - max(grace, 0) * 60
    result = BlobPurge()
    fanouts = blobs.fanout_dirs()
    resume = _resume_after(PURGE_BLOB_TASK, None)
    if isinstance(resume, str):
        fanouts = [d for d in fanouts if d.name > resume]
    progress.begin(len(fanouts))
    started = time.monotonic()
    done = 0
    for done, directory in enumerate(fanouts, start=1):
        candidates: list[tuple[str, int]] = []
        for name, path in blobs.files_under(directory):
            result.scanned += 1
            if not blobs.is_blob_hash(name):
                result.strays += blobs.remove_stray(path, cutoff, blob_referenced)
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if stat.st_mtime >= cutoff:
                result.kept_recent += 1
                continue
            candidates.append((name, stat.st_size))
            if len(candidates) >= BATCH:
                _sweep(candidates, cutoff, result)
                candidates = []
        _sweep(candidates, cutoff, result)
        progress.step(done, _blob_message(result))
        if time.monotonic() - started > _budget():
            break
    _audit_run(actor, "store.purge-blob", "blob store", tenant_id=None, changes=asdict(result))
    message = _blob_message(result)
    outcome: dict[str, Any] = asdict(result)
    if done < len(fanouts):
        message += (
            f"; stopped at the time budget after {fanouts[done - 1].name}/, the next run goes on"
        )
        outcome["resumeAfter"] = fanouts[done - 1].name
    return Outcome(True, message, outcome)


def _sweep(candidates: list[tuple[str, int]], cutoff: float, result: BlobPurge) -> None:
    if not candidates:
        return
    used = blobs_referenced(name for name, _ in candidates)
    for name, size in candidates:
        if name not in used and blobs.remove_unless_used(name, cutoff, blob_referenced):
            result.deleted += 1
            result.freed += size


def _blob_message(result: BlobPurge) -> str:
    return (
        f"{result.deleted} unreferenced blob(s) deleted ({result.freed} bytes) of "
        f"{result.scanned} file(s); {result.kept_recent} too recent to judge"
    )


# --- the data and in-memory purges --------------------------------------------------------


def data_purge_run(*, actor: Principal | None, progress: Progress) -> Outcome:
    """Expired rows: sessions, OAuth codes/tokens and lockout rows, finished queue messages
    past MAILADMIN_QUEUE_KEEP_DAYS, finished task runs past the reaper's 30 days, spent
    stream tokens past their expiry (spending one purges them too, but only then)."""
    from apps.accounts.auth.housekeeping import auth_housekeeping
    from apps.queue.delivery import FINAL
    from apps.queue.models import QueuedMessage
    from mailadmin.core.taskbase import KEEP_FINISHED

    _require(actor, Perm.PURGE_DATA_STORE, server_wide=True)
    now = timezone.now()
    progress.begin(5)
    counts: dict[str, int] = {}
    counts["sessions"] = _delete_in_batches(Session.objects.filter(expire_date__lt=now))
    progress.step(1, f"{counts['sessions']} expired session(s)")
    auth = auth_housekeeping()
    counts.update({f"auth_{key}": value for key, value in auth.items()})
    progress.step(2, f"{sum(auth.values())} expired OAuth code(s)/token(s) and lockout row(s)")
    keep = timedelta(days=settings.MAILADMIN_QUEUE_KEEP_DAYS)
    counts["queue_messages"] = _delete_in_batches(
        QueuedMessage.objects.filter(status__in=FINAL, created__lt=now - keep)
    )
    progress.step(3, f"{counts['queue_messages']} finished queue message(s)")
    counts["task_runs"] = _delete_in_batches(
        TaskRun.objects.filter(finished_at__lt=now - KEEP_FINISHED)
    )
    progress.step(4, f"{counts['task_runs']} finished task run(s)")
    counts["spent_tokens"] = _delete_in_batches(SpentToken.objects.filter(expires_at__lt=now))
    progress.step(5, f"{counts['spent_tokens']} spent stream token(s) past their expiry")
    _audit_run(actor, "store.purge-data", "data store", tenant_id=None, changes=counts)
    return Outcome(True, f"{sum(counts.values())} expired row(s) deleted", counts)


def _delete_in_batches(queryset: QuerySet) -> int:
    deleted = 0
    label = queryset.model._meta.label
    while ids := list(queryset.order_by("pk").values_list("pk", flat=True)[:BATCH]):
        # Only the rows themselves count, not what cascades with them.
        deleted += queryset.model.objects.filter(pk__in=ids).delete()[1].get(label, 0)
    return deleted


def in_memory_purge_run(*, actor: Principal | None, progress: Progress) -> Outcome:
    """Expired entries of the in-memory store: the cache (rate counters, remembered
    devices) when it is the database table; Redis drops expired keys by itself."""
    from django.core.cache.backends.db import DatabaseCache

    from apps.accounts.auth.login import throttle_purge

    _require(actor, Perm.PURGE_IN_MEMORY_STORE, server_wide=True)
    progress.begin(2)
    counts = {"cache_entries": 0, "login_counters": 0}
    backend = caches["default"]
    if isinstance(backend, DatabaseCache):
        table = connection.ops.quote_name(backend._table)  # ours, from settings
        with connection.cursor() as cursor:
            # As Django's cache writes `expires` (naive UTC on SQLite, aware elsewhere).
            now = connection.ops.adapt_datetimefield_value(timezone.now())
            cursor.execute(f"DELETE FROM {table} WHERE expires < %s", [now])  # noqa: S608
            counts["cache_entries"] = max(cursor.rowcount, 0)
        progress.step(1, f"{counts['cache_entries']} expired cache entr(ies)")
    else:
        progress.step(1, "the cache (Redis) expires its keys by itself")
    counts["login_counters"] = throttle_purge()
    progress.step(2, f"{counts['login_counters']} login counter(s) no longer counting")
    _audit_run(actor, "store.purge-in-memory", "in-memory store", tenant_id=None, changes=counts)
    return Outcome(True, f"{sum(counts.values())} expired entr(ies) deleted", counts)


# --- reindex ------------------------------------------------------------------------------

SUMMARY_FIELDS = ("from_name", "from_address", "subject", "date", "message_id")


def reindex_run(
    *,
    actor: Principal | None,
    tenant_id: int | None,
    progress: Progress,
) -> Outcome:
    """Recompute each message's derived columns from its blob, in id batches under a time
    budget (a run that stops records the last id; the next one goes on from there)."""
    if actor is not None:
        _require(actor, Perm.FTS_REINDEX)
        if _tenant_of(actor) != tenant_id:
            raise SuperadminOnly("Only a superadmin may reindex every tenant's mail.")
    messages = Message.objects.all()
    if tenant_id is not None:
        messages = messages.filter(principal__tenant_id=tenant_id)
    resume = _resume_after(REINDEX_TASK, tenant_id)
    last = resume if isinstance(resume, int) else 0
    progress.begin(messages.filter(pk__gt=last).order_by().count())
    started = time.monotonic()
    counts = {"messages": 0, "updated": 0, "missing": 0}
    missing: list[int] = []
    finished = True
    fields = ["size", *SUMMARY_FIELDS]
    while batch := list(messages.filter(pk__gt=last).order_by("pk").only("pk", *fields)[:BATCH]):
        changed = []
        for message in batch:
            counts["messages"] += 1
            try:
                size = blobs.size(message.blob_hash)
                head = blobs.read(message.blob_hash, limit=HEADER_READ)
            except blobs.BlobNotFound:
                counts["missing"] += 1
                if len(missing) < 20:
                    missing.append(message.pk)
                continue
            summary = parse_summary(head)
            fresh = {"size": size, **{f: getattr(summary, f) for f in SUMMARY_FIELDS}}
            if any(getattr(message, f) != v for f, v in fresh.items()):
                for f, v in fresh.items():
                    setattr(message, f, v)
                changed.append(message)
        if changed:
            Message.objects.bulk_update(changed, fields)
            counts["updated"] += len(changed)
        last = batch[-1].pk
        progress.step(counts["messages"], _reindex_message(counts))
        if time.monotonic() - started > _budget():
            finished = not messages.filter(pk__gt=last).exists()
            break
    _audit_run(
        actor,
        "store.reindex",
        "all mail" if tenant_id is None else "the tenant's mail",
        tenant_id=tenant_id,
        changes=counts,
    )
    message = _reindex_message(counts)
    result: dict[str, Any] = {**counts, "missingIds": missing}
    if not finished:
        message += f"; stopped at the time budget after message {last}, the next run goes on"
        result["resumeAfter"] = last
    return Outcome(counts["missing"] == 0, message, result)


def _reindex_message(counts: dict[str, int]) -> str:
    return (
        f"{counts['messages']} message(s) re-read, {counts['updated']} updated, "
        f"{counts['missing']} with a missing blob"
    )


# --- undelete -----------------------------------------------------------------------------


def blob_id(blob_hash: str) -> str:
    """The management API's form of a blob hash: unpadded base64url of the SHA-256."""
    return base64.urlsafe_b64encode(bytes.fromhex(blob_hash)).decode().rstrip("=")


def _parse_hash(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if blobs.is_blob_hash(text.lower()) and len(text) == 64:
        return text.lower()
    try:
        raw = base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def undelete_window() -> timedelta:
    return timedelta(days=max(settings.MAILADMIN_STORE_UNDELETE_DAYS, 0))


def deleted_list(*, actor: Principal, account_id: str | int) -> QuerySet[DeletedMessage]:
    """The account's deleted messages still in the undelete window, newest first."""
    account = account_for(actor=actor, account_id=account_id, permission=Perm.UNDELETE)
    return DeletedMessage.objects.filter(
        principal=account, deleted_at__gt=timezone.now() - undelete_window()
    ).order_by("-deleted_at", "-id")


def deleted_item(row: DeletedMessage) -> dict[str, Any]:
    expires = row.deleted_at + undelete_window()
    return {
        "id": row.pk,
        "hash": blob_id(row.blob_hash),
        "collection": "email",
        "size": row.size,
        "deletedAt": _iso(row.deleted_at),
        "expiresAt": _iso(expires),
        "folder": row.folder_name,
        "from": row.from_address,
        "subject": row.subject,
        "receivedAt": _iso(row.received_at),
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class UndeleteRequest:
    blob_hash: str
    restore_time: datetime | None


def parse_undelete(body: object) -> list[UndeleteRequest]:
    """The body of Undelete Messages: [{hash, collection, restoreTime, cancelDeletion}]."""
    if not isinstance(body, list):
        raise ValidationFailed("The body must be a list of messages to undelete.")
    if len(body) > MAX_UNDELETE_ITEMS:
        raise ValidationFailed(f"At most {MAX_UNDELETE_ITEMS} messages at once.")
    known = {"hash", "collection", "restoreTime", "cancelDeletion"}
    requests = []
    for index, item in enumerate(body):
        if not isinstance(item, dict):
            raise ValidationFailed(f"Item {index} must be an object.")
        for name in item:
            if name not in known:
                raise ValidationFailed(f"Unrecognized field: {str(name)[:80]}", field=str(name))
        if "hash" not in item:
            raise ValidationFailed("Missing required field: hash", field="hash")
        blob_hash = _parse_hash(item["hash"])
        if blob_hash is None:
            raise ValidationFailed(
                f"Item {index}: hash is not a blob hash (base64url or hex SHA-256).", field="hash"
            )
        collection = item.get("collection", "email")
        if collection != "email":
            raise ValidationFailed(
                f"Item {index}: only the collection 'email' can be undeleted.", field="collection"
            )
        times: dict[str, datetime | None] = {}
        for name in ("restoreTime", "cancelDeletion"):
            raw = item.get(name)
            moment = parse_datetime(raw) if isinstance(raw, str) else None
            if raw is not None and (moment is None or moment.tzinfo is None):
                raise ValidationFailed(
                    f"Item {index}: {name} must be a date and time with its zone "
                    "(2025-01-05T14:50:13Z).",
                    field=name,
                )
            times[name] = moment
        requests.append(UndeleteRequest(blob_hash, times["restoreTime"]))
    return requests


def undelete(
    *, actor: Principal, account_id: str | int, requests: list[UndeleteRequest]
) -> list[dict[str, str]]:
    """Restore each requested message (every deleted copy with that hash, or the one deleted
    in the second `restoreTime` names) into its folder with a new UID; per item
    {"type": "success"} or {"type": "notFound"}."""
    account = account_for(actor=actor, account_id=account_id, permission=Perm.UNDELETE)
    results = []
    restored: list[Message] = []
    with transaction.atomic():
        folders = folders_ensure(account)
        by_id = {f.pk: f for f in folders.values()}
        since = timezone.now() - undelete_window()
        for request in requests:
            rows = DeletedMessage.objects.select_for_update().filter(
                principal=account, blob_hash=request.blob_hash, deleted_at__gt=since
            )
            if request.restore_time is not None:
                moment = request.restore_time.replace(microsecond=0)
                rows = rows.filter(
                    deleted_at__gte=moment, deleted_at__lt=moment + timedelta(seconds=1)
                )
            found = list(rows.order_by("id"))
            for row in found:
                restored.append(_restore(row, by_id, folders))
            results.append({"type": "success" if found else "notFound"})
        if restored:
            audit(
                actor=actor,
                action="store.undelete",
                obj=account,
                tenant_id=account.tenant_id,
                changes={"restored": [m.pk for m in restored][:100], "count": len(restored)},
            )
    return results


def undelete_rows(*, actor: Principal, account_id: str | int, row_ids: list[int]) -> int:
    """Restore these deleted messages (the console's rows) of the account; how many were."""
    account = account_for(actor=actor, account_id=account_id, permission=Perm.UNDELETE)
    with transaction.atomic():
        folders = folders_ensure(account)
        by_id = {f.pk: f for f in folders.values()}
        rows = DeletedMessage.objects.select_for_update().filter(
            principal=account, pk__in=row_ids, deleted_at__gt=timezone.now() - undelete_window()
        )
        restored = [_restore(row, by_id, folders) for row in rows.order_by("id")]
        if restored:
            audit(
                actor=actor,
                action="store.undelete",
                obj=account,
                tenant_id=account.tenant_id,
                changes={"restored": [m.pk for m in restored][:100], "count": len(restored)},
            )
    return len(restored)


def _restore(row: DeletedMessage, by_id: dict[int, Folder], folders: dict[str, Folder]) -> Message:
    folder = by_id.get(row.folder_id) or folders["INBOX"]
    message = Message.objects.create(
        folder=folder,
        principal_id=row.principal_id,
        uid=_next_uid(folder.pk),
        blob_hash=row.blob_hash,
        size=row.size,
        flags=[f for f in row.flags if f != DELETED_FLAG],
        received_at=row.received_at,
        from_name=row.from_name,
        from_address=row.from_address,
        subject=row.subject,
        date=row.date,
        message_id=row.message_id,
    )
    row.delete()
    return message


# --- reset IMAP UIDs ----------------------------------------------------------------------


def uids_reset(*, actor: Principal, account_id: str | int) -> tuple[int, int]:
    """New UIDVALIDITY for each folder, messages renumbered 1..n in their UID order;
    answers (folders, messages). The folder rows are locked, so a delivery waits and then
    takes the next UID of the new numbering."""
    account = account_for(actor=actor, account_id=account_id, permission=Perm.IMAP_UID_RESET)
    folder_count = message_count = 0
    with transaction.atomic():
        for folder in Folder.objects.select_for_update().filter(principal=account).order_by("pk"):
            messages = Message.objects.filter(folder=folder)
            messages.update(uid=F("uid") + UID_SHIFT)  # out of the way of 1..n
            ids = list(messages.order_by("uid").values_list("pk", flat=True))
            for start in range(0, len(ids), BATCH):
                chunk = [
                    Message(pk=pk, uid=start + offset + 1)
                    for offset, pk in enumerate(ids[start : start + BATCH])
                ]
                Message.objects.bulk_update(chunk, ["uid"])
            validity = new_uidvalidity()
            while validity == folder.uidvalidity:
                validity = new_uidvalidity()
            Folder.objects.filter(pk=folder.pk).update(uidvalidity=validity, uidnext=len(ids) + 1)
            folder_count += 1
            message_count += len(ids)
        audit(
            actor=actor,
            action="store.uids-reset",
            obj=account,
            tenant_id=account.tenant_id,
            changes={"folders": folder_count, "messages": message_count},
        )
    return folder_count, message_count
