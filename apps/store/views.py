"""Console pages of the mail store: a mailbox's messages by folder, and one message raw.

Reading mail is reading content: each page needs `principal-get` (to reach the mailbox)
and `blob-fetch` (to read what is in it), and sees only the actor's tenant.
"""

from __future__ import annotations

import io
from urllib.parse import urlencode

from django.http import FileResponse, Http404, HttpRequest, HttpResponse

from apps.accounts.permissions import Perm
from apps.store import blobs, selectors, services
from apps.store.models import Folder
from mailadmin.api.pagination import paginate_query
from mailadmin.core.decorators import permission_required
from mailadmin.core.rendering import render_page
from mailadmin.errors import NotFound

PAGE_SIZE = 50
MAX_TOTAL = 10_000
# The raw view shows this much of a message as text; the download has all of it.
RAW_VIEW_BYTES = 256 * 1024
READ_MAIL = (Perm.PRINCIPAL_GET, Perm.BLOB_FETCH)


def _choose_folder(folders: list[Folder], wanted: str) -> Folder | None:
    by_name = {f.name: f for f in folders}
    if wanted.upper() == "INBOX":
        wanted = "INBOX"
    return by_name.get(wanted) or by_name.get("INBOX") or (folders[0] if folders else None)


@permission_required(*READ_MAIL)
def mailbox_messages(request: HttpRequest, pk: int) -> HttpResponse:
    actor = request.user
    try:
        mailbox = selectors.mailbox_get(actor=actor, principal_id=pk)
    except NotFound:
        raise Http404 from None
    folders = selectors.folder_list(mailbox=mailbox)
    folder = _choose_folder(folders, (request.GET.get("folder") or "INBOX")[:255])
    pagination = None
    if folder is not None:
        queryset = selectors.message_list(actor=actor, mailbox=mailbox, folder=folder)
        query = {"folder": folder.name}  # a bad folder name in the URL is not carried on
        pagination = paginate_query(
            {**request.GET.dict(), **query}, queryset, limit=PAGE_SIZE, max_total=MAX_TOTAL
        )
    context = {
        "mailbox": mailbox,
        "folders": [(f, "?" + urlencode({"folder": f.name})) for f in folders],
        "folder": folder,
        "page": pagination.page if pagination else None,
        "pagination": pagination,
        "used": services.used_bytes(mailbox),
    }
    return render_page(request, "store/message_list.html", context, partial="message-table")


def _message(request: HttpRequest, pk: int):
    try:
        return selectors.message_get(actor=request.user, message_id=pk)
    except NotFound:
        raise Http404 from None


@permission_required(*READ_MAIL)
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    message = _message(request, pk)
    try:
        data = blobs.read(message.blob_hash, limit=RAW_VIEW_BYTES)
        missing = False
    except blobs.BlobNotFound:
        data, missing = b"", True
    context = {
        "message": message,
        "raw_text": data.decode("utf-8", "replace"),
        "truncated": message.size > RAW_VIEW_BYTES,
        "shown_bytes": RAW_VIEW_BYTES,
        "missing": missing,
    }
    return render_page(request, "store/message_detail.html", context)


@permission_required(*READ_MAIL)
def message_raw(request: HttpRequest, pk: int) -> FileResponse:
    """The message as stored, to download (never rendered by the browser)."""
    message = _message(request, pk)
    try:
        data = blobs.read(message.blob_hash)
    except blobs.BlobNotFound:
        raise Http404 from None
    response = FileResponse(
        io.BytesIO(data),
        as_attachment=True,
        filename=f"message-{message.pk}.eml",
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response
