"""Writes to the mail store: local delivery into a mailbox's folder, and quota sums.

Delivery is a data-plane write (the SMTP listener, DSNs, list expansion call it), so it is
not audited; it takes the receiving principal, not an acting administrator.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from apps.accounts.models import Principal, PrincipalType
from apps.store import blobs, encryption
from apps.store.headers import Summary, parse_summary
from apps.store.models import STANDARD_FOLDERS, Folder, Message
from mailadmin.errors import ServiceError, ValidationFailed

logger = logging.getLogger(__name__)

MAX_FLAGS = 64
# IMAP flags are atoms: system flags start with a backslash, keywords do not.
_FLAG = re.compile(r"^\\?[!#-'*+\-.0-9:<-Z^-z|~]{1,64}$")


class QuotaExceeded(ServiceError):
    """No mailbox had room for the message (SMTP: 452 4.2.2)."""

    status = 507
    title = "Insufficient Storage"

    def __init__(self, principals: Sequence[Principal]) -> None:
        names = ", ".join(p.name for p in principals)
        super().__init__(f"Mailbox over quota: {names}.")
        self.principals = list(principals)


# --- folders ------------------------------------------------------------------------------


def new_uidvalidity() -> int:
    """A random non-zero 32-bit UIDVALIDITY: a recreated folder never reuses its old one."""
    return secrets.randbelow(2**32 - 1) + 1


def folders_ensure(principal: Principal) -> dict[str, Folder]:
    """The principal's folders by name, creating the standard four on first use.

    Concurrent first deliveries both insert with ON CONFLICT DO NOTHING and read back the
    same rows, so neither fails and UIDVALIDITY is fixed by whichever insert won.
    """
    folders = {f.name: f for f in Folder.objects.filter(principal=principal)}
    if all(name in folders for name in STANDARD_FOLDERS.values()):
        return folders
    Folder.objects.bulk_create(
        [
            Folder(principal=principal, name=name, special_use=use, uidvalidity=new_uidvalidity())
            for use, name in STANDARD_FOLDERS.items()
            if name not in folders
        ],
        ignore_conflicts=True,
    )
    return {f.name: f for f in Folder.objects.filter(principal=principal)}


def _folder_name(name: str) -> str:
    # IMAP: INBOX is case-insensitive, every other name is exact.
    return "INBOX" if name.upper() == "INBOX" else name


def _clean_flags(flags: Sequence[str]) -> list[str]:
    if isinstance(flags, str):
        raise ValidationFailed("flags must be a list of IMAP flags, not one string.")
    cleaned: list[str] = []
    for flag in flags:
        if not isinstance(flag, str) or not _FLAG.match(flag):
            raise ValidationFailed(f"'{str(flag)[:80]}' is not an IMAP flag.", field="flags")
        if flag not in cleaned:
            cleaned.append(flag)
    if len(cleaned) > MAX_FLAGS:
        raise ValidationFailed(f"At most {MAX_FLAGS} flags.", field="flags")
    return cleaned


# --- delivery -----------------------------------------------------------------------------


def deliver(
    principal: Principal,
    data: bytes,
    *,
    folder: str = "INBOX",
    flags: Sequence[str] = (),
    at_rest_applied: bool = False,
) -> Message:
    """Store `data` in `folder` of an individual's mailbox and return the new message.

    The bytes are written (once) as a blob before the row exists, so a row always points at
    a blob; a crash in between leaves an unreferenced blob, never a dangling row. Quota is
    not checked here: the caller decides (see `quota_exceeded`, recipients.deliver_to_address).

    An account with encryption at rest gets `data` encrypted to its keys (one query for
    the settings); `at_rest_applied=True` says the caller did that already for a whole
    batch (`encryption.at_rest_for` + `encryption.protect`) and `data` is what to store.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValidationFailed("A message is bytes.")
    data = bytes(data)
    cleaned_flags = _clean_flags(flags)
    # The list shows the clear header fields, which encryption keeps as they are.
    summary = parse_summary(data)
    if not at_rest_applied:
        data = encryption.copies_for([principal], data)[principal.pk]
    blob_hash = blobs.put(data)
    return deliver_stored(
        principal,
        blob_hash=blob_hash,
        size=len(data),
        summary=summary,
        folder=folder,
        flags=cleaned_flags,
    )


def deliver_stored(
    principal: Principal,
    *,
    blob_hash: str,
    size: int,
    summary: Summary,
    folder: str,
    flags: list[str],
) -> Message:
    """`deliver` for bytes already stored as a blob (one `put` serves many mailboxes);
    `flags` must be clean already. The blob is stored as it is: the caller applies the
    accounts' encryption at rest first (`encryption.copies_for`), as
    recipients.deliver_to_mailboxes and the quarantine's release do."""
    if principal.type != PrincipalType.INDIVIDUAL:
        raise ValidationFailed(f"{principal.name} is not a mailbox.")
    name = _folder_name(folder)
    folders = folders_ensure(principal)
    if name not in folders:
        raise ValidationFailed(f"{principal.name} has no folder named '{name[:255]}'.")
    target = folders[name]
    with transaction.atomic():
        uid = _next_uid(target.pk)
        return Message.objects.create(
            folder=target,
            principal=principal,
            uid=uid,
            blob_hash=blob_hash,
            size=size,
            flags=flags,
            received_at=timezone.now(),
            from_name=summary.from_name,
            from_address=summary.from_address,
            subject=summary.subject,
            date=summary.date,
            message_id=summary.message_id,
        )


def _next_uid(folder_id: int) -> int:
    """Reserve the folder's next UID inside the caller's transaction.

    The UPDATE increments in the database (never a value read into Python) and holds the
    row lock until commit, so a concurrent delivery waits and then reads the incremented
    value: two messages never share a UID, and a rolled-back delivery only leaves a gap,
    which IMAP allows.
    """
    table = connection.ops.quote_name(Folder._meta.db_table)  # ours, never user input
    # One round trip: RETURNING (PostgreSQL, SQLite 3.35+).
    sql = f"UPDATE {table} SET uidnext = uidnext + 1 WHERE id = %s RETURNING uidnext"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [folder_id])
        row = cursor.fetchone()
    if row is None:
        raise Folder.DoesNotExist(f"folder {folder_id} is gone")
    return int(row[0]) - 1


# --- quota --------------------------------------------------------------------------------


def used_bytes(principal: Principal) -> int:
    """Bytes stored in the principal's mailbox (each copy counts, as users see it)."""
    total = Message.objects.filter(principal=principal).aggregate(total=Sum("size"))["total"]
    return int(total or 0)


def used_bytes_by_principal(principals: Sequence[Principal]) -> dict[int, int]:
    """used_bytes of many mailboxes in one query (a list's members), by principal id."""
    totals = dict.fromkeys((p.pk for p in principals), 0)
    rows = (
        Message.objects.filter(principal_id__in=list(totals))
        .values_list("principal_id")
        .annotate(total=Sum("size"))
        .order_by()
    )
    totals.update({pk: int(total or 0) for pk, total in rows})
    return totals


def over_quota(principal: Principal, used: int, size: int) -> bool:
    return bool(principal.quota) and principal.quota > 0 and used + max(size, 0) > principal.quota


def quota_exceeded(principal: Principal, size: int) -> bool:
    """Would storing `size` more bytes go over the principal's quota (0 = no limit)?"""
    if not principal.quota or principal.quota <= 0:
        return False  # no limit: no need to sum
    return over_quota(principal, used_bytes(principal), size)
