"""Queue pages: the outbound queue with filters, status chips, a chart of its size, bulk
reschedule/cancel (after a confirmation page) and the stop/resume switch; one message with
each recipient's status and the remote server's last answer; the raw message.

HTMX requests get the named partial (`#queue-table`, refreshed every few seconds); full
requests the page. Another tenant's message (or a missing one) is 404.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.permissions import Perm
from apps.queue import selectors, services
from apps.queue.serializers import parse_filters
from mailadmin.api.pagination import paginate
from mailadmin.converters import digits, is_id
from mailadmin.core.decorators import permission_required
from mailadmin.core.rendering import render_page
from mailadmin.core.tenants import narrow
from mailadmin.errors import NotFound, ServiceError

PAGE_SIZE = 50
MAX_TOTAL = 10_000
RAW_LIMIT = 512 * 1024
FILTER_NAMES = ("text", "recipient", "sender", "domain", "status", "from", "to")
ACTIONS = {"reschedule": "Reschedule", "cancel": "Cancel delivery of"}


def _page_number(value: str | None) -> int:
    return int(value) if value and digits(value) and len(value) < 7 and int(value) > 0 else 1


def _filter_params(source) -> dict[str, str]:
    return {k: source.get(k, "").strip() for k in FILTER_NAMES if source.get(k, "").strip()}


def _matching(request: HttpRequest, params: dict[str, str]):
    """Scoped messages matching `params`, narrowed to the selected tenant; (qs, problem)."""
    try:
        filters = parse_filters(params)
        return narrow(selectors.message_list(actor=request.user, filters=filters), request), ""
    except ServiceError as exc:
        clean = {k: v for k, v in params.items() if k not in (exc.field, "from", "to")}
        filters = parse_filters(clean)
        return narrow(
            selectors.message_list(actor=request.user, filters=filters), request
        ), exc.message


def _list_context(request: HttpRequest) -> dict:
    actor = request.user
    params = _filter_params(request.GET)
    queryset, problem = _matching(request, params)
    page_number = _page_number(request.GET.get("page"))
    page = paginate(
        selectors.with_details(queryset), page=page_number, limit=PAGE_SIZE, max_total=MAX_TOTAL
    )
    pages = max(1, -(-page.total // PAGE_SIZE))

    def link(**changes) -> str:
        query = {**params, "page": page_number, **changes}
        return "?" + urlencode({k: v for k, v in query.items() if v not in ("", None, 1)})

    chips = [
        {
            "status": status,
            "count": count,
            "capped": count >= selectors.CHIP_CAP,
            "url": link(status=status, page=1),
            "active": params.get("status") == status,
        }
        for status, count in selectors.status_counts(actor=actor).items()
    ]
    return {
        "page": page,
        "page_number": page_number,
        "pages": pages,
        "prev_url": link(page=page_number - 1) if page_number > 1 else None,
        "next_url": link(page=page_number + 1) if page_number < pages else None,
        "refresh_url": link(),
        "all_url": link(status="", page=1),
        "filters": params,
        "filter_query": urlencode(params),
        "problem": problem,
        "chips": chips,
        "running": selectors.queue_running(),
        "show_tenant": actor.reaches_all_tenants,
        "can_update": actor.has_permission(Perm.MESSAGE_QUEUE_UPDATE),
        "can_delete": actor.has_permission(Perm.MESSAGE_QUEUE_DELETE),
        "can_control": actor.has_permission(Perm.QUEUE_CONTROL),
    }


@permission_required(Perm.MESSAGE_QUEUE_LIST)
def queue_index(request: HttpRequest) -> HttpResponse:
    context = _list_context(request)
    if not request.htmx:
        context["sizes"] = [
            {"at": s.at.strftime("%Y-%m-%d %H:%M"), "size": s.size}
            for s in selectors.queue_sizes(actor=request.user)
        ]
    return render_page(request, "queue/queue_list.html", context, partial="queue-table")


@require_POST
@permission_required(Perm.MESSAGE_QUEUE_LIST)
def queue_bulk(request: HttpRequest) -> HttpResponse:
    """Reschedule or cancel the ticked messages, or all matching the filters; first a
    confirmation page saying how many, then (with confirm=yes) the action."""
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        raise Http404
    needed = Perm.MESSAGE_QUEUE_UPDATE if action == "reschedule" else Perm.MESSAGE_QUEUE_DELETE
    if not request.user.has_permission(needed):
        raise PermissionDenied(f"You do not have the permission '{needed}' needed for this page.")
    params = _filter_params(request.POST)
    queryset, _ = _matching(request, params)
    ids = [int(i) for i in request.POST.getlist("ids") if is_id(i)][:1000]
    scope_all = request.POST.get("scope") == "all"
    if not scope_all:
        queryset = queryset.filter(pk__in=ids)
    back = reverse("queue:index") + ("?" + urlencode(params) if params else "")
    if request.POST.get("confirm") != "yes":
        count = queryset.order_by()[:MAX_TOTAL].count()
        if not count:
            messages.info(request, "No messages selected.")
            return redirect(back)
        context = {
            "action": action,
            "verb": ACTIONS[action],
            "count": count,
            "capped": count >= MAX_TOTAL,
            "ids": ids,
            "scope_all": scope_all,
            "filters": params,
            "back": back,
        }
        return render(request, "queue/queue_confirm.html", context)
    if action == "reschedule":
        changed = services.queue_reschedule(actor=request.user, messages=queryset)
        messages.success(request, f"{changed} domain(s) will be tried again now.")
    else:
        cancelled = services.queue_cancel(actor=request.user, messages=queryset)
        messages.success(request, f"Cancelled delivery to {cancelled} recipient(s).")
    return redirect(back)


@require_POST
@permission_required(Perm.QUEUE_CONTROL)
def queue_toggle(request: HttpRequest) -> HttpResponse:
    if request.POST.get("running") == "yes":
        services.queue_start(actor=request.user)
        messages.success(request, "The queue is running: deliveries start again.")
    else:
        services.queue_stop(actor=request.user)
        messages.success(request, "The queue is stopped: no new delivery starts.")
    return redirect("queue:index")


def _get(request: HttpRequest, pk: int):
    try:
        return selectors.message_get(actor=request.user, message_id=pk)
    except NotFound:
        raise Http404 from None


@permission_required(Perm.MESSAGE_QUEUE_GET)
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    message = _get(request, pk)
    context = {
        "message": message,
        "domains": list(message.domains.all()),
        "can_update": request.user.has_permission(Perm.MESSAGE_QUEUE_UPDATE),
        "can_delete": request.user.has_permission(Perm.MESSAGE_QUEUE_DELETE),
    }
    return render(request, "queue/message_detail.html", context)


@require_POST
@permission_required(Perm.MESSAGE_QUEUE_UPDATE)
def message_reschedule(request: HttpRequest, pk: int) -> HttpResponse:
    message = _get(request, pk)
    scoped = selectors.message_scoped(actor=request.user, message=message)
    changed = services.queue_reschedule(actor=request.user, messages=scoped)
    messages.success(request, f"{changed} domain(s) will be tried again now.")
    return redirect("queue:detail", pk=pk)


@require_POST
@permission_required(Perm.MESSAGE_QUEUE_DELETE)
def message_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    message = _get(request, pk)
    address = (request.POST.get("recipient") or "").strip()[:320] or None
    scoped = selectors.message_scoped(actor=request.user, message=message)
    cancelled = services.queue_cancel(actor=request.user, messages=scoped, address=address)
    messages.success(request, f"Cancelled delivery to {cancelled} recipient(s).")
    return redirect("queue:detail", pk=pk)


@permission_required(Perm.MESSAGE_QUEUE_GET)
def message_raw(request: HttpRequest, pk: int) -> HttpResponse:
    """The message as queued (its first RAW_LIMIT bytes), shown as text."""
    from apps.store import blobs

    message = _get(request, pk)
    try:
        data = blobs.read(message.blob_hash, limit=RAW_LIMIT)
    except FileNotFoundError:
        data = None
    context = {
        "message": message,
        "text": data.decode("utf-8", "replace") if data is not None else None,
        "truncated": message.size > RAW_LIMIT,
        "limit": RAW_LIMIT,
    }
    return render(request, "queue/message_raw.html", context)
