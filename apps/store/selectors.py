"""Reads of the mail store, scoped to the acting principal.

`messages_visible` is the one scoping rule for stored mail (the tenant of the mailbox);
`blob_visible` decides who may read a blob's bytes. Nothing here writes.
"""

from __future__ import annotations

import base64
import binascii

from django.db.models import Case, IntegerField, QuerySet, Value, When

from apps.accounts.models import Principal, PrincipalType
from apps.store import blobs
from apps.store.models import STANDARD_FOLDERS, Folder, Message
from mailadmin.errors import NotFound
from mailadmin.tenancy import scope

# --- the scoping entry points -------------------------------------------------------------


def messages_visible(actor: Principal) -> QuerySet[Message]:
    """Stored messages of mailboxes in the actor's tenant; all of them for a superadmin."""
    return scope(Message.objects.all(), actor, tenant_field="principal__tenant")


def mailboxes_visible(actor: Principal) -> QuerySet[Principal]:
    return scope(Principal.objects.filter(type=PrincipalType.INDIVIDUAL), actor)


def blob_visible(actor: Principal, blob_hash: str) -> bool:
    """May `actor` read the blob? A superadmin any blob; anyone else only a blob that mail
    of their tenant references. Blobs are shared by content, so "it exists" is never
    enough: the same bytes delivered to another tenant say nothing about this one.

    The hook for every place that references blobs: stored mail, and the outbound queue's
    messages of the actor's tenant.
    """
    from apps.queue.selectors import queued_messages_visible

    if actor.reaches_all_tenants:
        return True
    return (
        messages_visible(actor).filter(blob_hash=blob_hash).exists()
        or queued_messages_visible(actor).filter(blob_hash=blob_hash).exists()
    )


# --- blobs --------------------------------------------------------------------------------


def parse_blob_id(blob_id: str) -> str:
    """A blob id as the API takes it: the SHA-256 in hex (any case) or in unpadded
    base64url (the management API's `blob_hash` form); NotFound for anything else."""
    text = (blob_id or "").strip()
    if len(text) == 64:
        candidate = text.lower()
    elif len(text) in (43, 44):
        try:
            raw = base64.urlsafe_b64decode(text.rstrip("=") + "=")
        except (binascii.Error, ValueError):
            raise blobs.BlobNotFound() from None
        if len(raw) != 32:
            raise blobs.BlobNotFound()
        candidate = raw.hex()
    else:
        raise blobs.BlobNotFound()
    if not blobs.is_blob_hash(candidate):
        raise blobs.BlobNotFound()
    return candidate


def blob_fetch(*, actor: Principal, blob_id: str, limit: int | None = None) -> bytes:
    """The blob's bytes (the first `limit` of them); NotFound when missing or not visible
    (the same answer, so a blob's existence says nothing to another tenant)."""
    blob_hash = parse_blob_id(blob_id)
    if not blob_visible(actor, blob_hash):
        raise blobs.BlobNotFound(blob_hash)
    return blobs.read(blob_hash, limit=limit)


# --- mailboxes, folders and messages ------------------------------------------------------


def mailbox_get(*, actor: Principal, principal_id: int) -> Principal:
    mailbox = mailboxes_visible(actor).select_related("tenant").filter(pk=principal_id).first()
    if mailbox is None:
        raise NotFound()
    return mailbox


def folder_list(*, mailbox: Principal) -> list[Folder]:
    """The mailbox's folders: the standard ones in their usual order, then the others."""
    order = Case(
        *[When(name=name, then=Value(i)) for i, name in enumerate(STANDARD_FOLDERS.values())],
        default=Value(len(STANDARD_FOLDERS)),
        output_field=IntegerField(),
    )
    return list(Folder.objects.filter(principal=mailbox).order_by(order, "name"))


def message_list(*, actor: Principal, mailbox: Principal, folder: Folder) -> QuerySet[Message]:
    """Newest first, through the (principal, folder, -received_at, -id) index."""
    return (
        messages_visible(actor)
        .filter(principal=mailbox, folder=folder)
        .order_by("-received_at", "-id")
    )


def message_get(*, actor: Principal, message_id: int) -> Message:
    message = (
        messages_visible(actor).select_related("folder", "principal").filter(pk=message_id).first()
    )
    if message is None:
        raise NotFound()
    return message
