"""Console pages of the mail store: a mailbox's messages by folder, and one message raw.

Reading mail is reading content: each page needs `principal-get` (to reach the mailbox)
and `blob-fetch` (to read what is in it), and sees only the actor's tenant.
"""

from __future__ import annotations

import io
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.models import PrincipalType
from apps.accounts.permissions import SERVER_WIDE, Perm
from apps.store import blobs, maintenance, selectors, services
from apps.store.models import Folder
from mailadmin.api.pagination import paginate_query
from mailadmin.converters import is_id
from mailadmin.core.decorators import any_permission_required, permission_required
from mailadmin.core.progress import task_run_list
from mailadmin.core.rendering import render_page
from mailadmin.errors import NotFound, ServiceError

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
        "can_purge": actor.has_permission(Perm.PURGE_ACCOUNT),
        "can_reset_uids": actor.has_permission(Perm.IMAP_UID_RESET),
        "can_undelete": actor.has_permission(Perm.UNDELETE),
        "purge_run": task_run_list(actor=actor)
        .filter(kind=f"store-purge-account-{mailbox.pk}")
        .first(),
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


# --- store maintenance --------------------------------------------------------------------

# What the Store page offers: (operation, title, what it does, permission, start service).
OPERATIONS = [
    (
        "purge-accounts",
        "Purge all accounts",
        "Expunges messages flagged \\Deleted and Trash/Junk past their retention in every "
        "mailbox you reach, and deletes for good what is past the undelete window.",
        Perm.PURGE_ACCOUNT,
        maintenance.purge_accounts_start,
    ),
    (
        "purge-blob",
        "Purge blob store",
        "Deletes message files no stored, deleted, queued or quarantined message references.",
        Perm.PURGE_BLOB_STORE,
        maintenance.purge_blob_start,
    ),
    (
        "purge-data",
        "Purge data store",
        "Deletes expired sessions, OAuth codes and tokens, finished queue messages and task runs.",
        Perm.PURGE_DATA_STORE,
        maintenance.purge_data_start,
    ),
    (
        "purge-in-memory",
        "Purge in-memory store",
        "Deletes expired cache entries (rate counters) and login counters.",
        Perm.PURGE_IN_MEMORY_STORE,
        maintenance.purge_in_memory_start,
    ),
    (
        "reindex",
        "Reindex",
        "Re-reads every message's file and recomputes its size, sender, subject and date.",
        Perm.FTS_REINDEX,
        maintenance.reindex_start,
    ),
]
MAINTENANCE_PERMISSIONS = tuple(dict.fromkeys(op[3] for op in OPERATIONS))
TASK_NAMES = {
    "purge-accounts": maintenance.PURGE_ACCOUNTS_TASK,
    "purge-blob": maintenance.PURGE_BLOB_TASK,
    "purge-data": maintenance.PURGE_DATA_TASK,
    "purge-in-memory": maintenance.PURGE_IN_MEMORY_TASK,
    "reindex": maintenance.REINDEX_TASK,
}


def _refused(exc: ServiceError) -> Exception:
    return Http404() if isinstance(exc, NotFound) else PermissionDenied(exc.message)


@permission_required(Perm.UNDELETE)
def maintenance_page(request: HttpRequest) -> HttpResponse:
    """The Store page: each operation the actor may start, with its latest run (live)."""
    actor = request.user
    runs = task_run_list(actor=actor)
    rows = []
    for op, title, summary, permission, _start in OPERATIONS:
        if actor.has_permission(permission) and (
            actor.reaches_all_tenants or permission not in SERVER_WIDE
        ):
            run = runs.filter(task_name=TASK_NAMES[op]).first()
            rows.append({"op": op, "title": title, "summary": summary, "run": run})
    context = {
        "operations": rows,
        "window": maintenance.undelete_window().days,
        "own_deleted": actor.type == PrincipalType.INDIVIDUAL,
    }
    return render(request, "store/maintenance.html", context)


@require_POST
@any_permission_required(*MAINTENANCE_PERMISSIONS)
def maintenance_start(request: HttpRequest, op: str) -> HttpResponse:
    starts = {row[0]: row[4] for row in OPERATIONS}
    if op not in starts:
        raise Http404
    try:
        run = starts[op](actor=request.user)
    except ServiceError as exc:
        raise _refused(exc) from None
    if request.htmx:
        return render(request, "core/task_progress.html", {"run": run})
    return redirect("store:index")


@require_POST
@permission_required(Perm.PURGE_ACCOUNT)
def mailbox_purge(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        run = maintenance.purge_account_start(actor=request.user, account_id=pk)
    except ServiceError as exc:
        raise _refused(exc) from None
    if request.htmx:
        return render(request, "core/task_progress.html", {"run": run})
    return redirect("store:mailbox", pk=pk)


@require_POST
@permission_required(Perm.IMAP_UID_RESET)
def mailbox_uids_reset(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        folders, count = maintenance.uids_reset(actor=request.user, account_id=pk)
    except ServiceError as exc:
        raise _refused(exc) from None
    messages.success(
        request, f"New UIDVALIDITY for {folders} folder(s); {count} message(s) renumbered."
    )
    if request.htmx:  # posted with hx-confirm: the page reloads and shows the message
        response = HttpResponse(status=204)
        response["HX-Redirect"] = reverse("store:mailbox", args=[pk])
        return response
    return redirect("store:mailbox", pk=pk)


@require_http_methods(["GET", "POST"])
@permission_required(Perm.UNDELETE)
def mailbox_deleted(request: HttpRequest, pk: int) -> HttpResponse:
    """The account's deleted messages still in the undelete window; POST restores some."""
    actor = request.user
    try:
        if request.method == "POST":
            ids = [int(v) for v in request.POST.getlist("restore") if is_id(v)]
            restored = maintenance.undelete_rows(actor=actor, account_id=pk, row_ids=ids)
            messages.success(request, f"{restored} message(s) restored.")
            return redirect("store:mailbox-deleted", pk=pk)
        account = maintenance.account_for(actor=actor, account_id=pk, permission=Perm.UNDELETE)
        listing = maintenance.deleted_list(actor=actor, account_id=pk)
    except ServiceError as exc:
        raise _refused(exc) from None
    pagination = paginate_query(request.GET.dict(), listing, limit=PAGE_SIZE, max_total=MAX_TOTAL)
    context = {
        "account": account,
        "page": pagination.page,
        "pagination": pagination,
        "window": maintenance.undelete_window().days,
        "can_read_mail": all(actor.has_permission(p) for p in READ_MAIL),
    }
    return render_page(request, "store/deleted_list.html", context, partial="deleted-table")
