"""Quarantine pages: the held messages with filters (mailbox, domain, quarantine, sender,
dates) and the one pager; an item's headers, score and tags; release to the INBOX or
delete, one at a time or ticked in bulk after a confirmation page.

Held mail is private, so the quarantine has permissions of its own (principal-get and
-update give none): `quarantine-list` to browse and read every item in reach,
`quarantine-release` and `quarantine-delete` to act on them; `manage-own-quarantine` (the
built-in user role) does all three on the items held in the account's own mailbox's
quarantine (not its domain's). An item out of reach (another tenant's, another mailbox's,
a missing one) is 404.
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
from apps.spamfilter import quarantine
from apps.spamfilter.models import QuarantinedMessage
from mailadmin.api.pagination import paginate_query
from mailadmin.converters import is_id
from mailadmin.core.decorators import any_permission_required
from mailadmin.core.rendering import render_page
from mailadmin.core.tenants import narrow
from mailadmin.errors import NotFound, ServiceError

PAGE_SIZE = 50
ACTIONS = {"release": "Release", "delete": "Delete"}
PERMISSIONS = {"release": quarantine.RELEASE, "delete": quarantine.DELETE}
OWN = quarantine.OWN


def _params(source) -> dict[str, str]:
    return {
        k: source.get(k, "").strip()[:320]
        for k in quarantine.FILTER_NAMES
        if source.get(k, "").strip()
    }


def _matching(request: HttpRequest, params: dict[str, str], permission: str = quarantine.READ):
    """Items in reach (for `permission`'s action) matching `params`, narrowed to the
    selected tenant: (qs, problem)."""
    problems: list[str] = []
    while True:  # each bad filter named and left out, the others kept
        try:
            filters = quarantine.parse_filters(params)
            break
        except ServiceError as exc:
            problems.append(exc.message)
            # (a problem naming no given field: every filter left out, so this ends)
            params = {k: v for k, v in params.items() if exc.field in params and k != exc.field}
    problem = " ".join(problems)
    items = quarantine.quarantine_list(actor=request.user, filters=filters, permission=permission)
    return narrow(items, request), problem


def _back(params: dict[str, str]) -> str:
    return reverse("spamfilter:quarantine") + ("?" + urlencode(params) if params else "")


def _abilities(actor) -> dict[str, bool]:
    can_release = quarantine.can_act(actor, quarantine.RELEASE)
    can_delete = quarantine.can_act(actor, quarantine.DELETE)
    return {
        "can_release": can_release,
        "can_delete": can_delete,
        "can_act": can_release or can_delete,
        "own_only": not actor.has_permission(quarantine.READ),
    }


@any_permission_required(Perm.QUARANTINE_LIST, OWN)
def quarantine_index(request: HttpRequest) -> HttpResponse:
    params = _params(request.GET)
    items, problem = _matching(request, params)
    pagination = paginate_query(request.GET, items, limit=PAGE_SIZE)
    context = {
        "pagination": pagination,
        "items": pagination.page.items,
        "filters": params,
        "problem": problem,
        "show_tenant": request.user.reaches_all_tenants,
        **_abilities(request.user),
        "max_bulk": quarantine.MAX_BULK,
        "retention_days": quarantine.settings.MAILADMIN_QUARANTINE_RETENTION_DAYS,
    }
    return render_page(
        request, "spamfilter/quarantine_list.html", context, partial="quarantine-table"
    )


def _denied(permission: str) -> PermissionDenied:
    return PermissionDenied(f"You do not have the permission '{permission}' needed for this page.")


def _report(request: HttpRequest, verb: str, result: quarantine.ActionResult) -> None:
    if result.done:
        messages.success(request, f"{verb} {result.done} message(s).")
    if result.failed:
        messages.error(request, f"Not done: {result.message}")
    if not result.done and not result.failed:
        messages.info(request, "No messages were selected.")


@require_POST
@any_permission_required(Perm.QUARANTINE_LIST, OWN)
def quarantine_bulk(request: HttpRequest) -> HttpResponse:
    """Release or delete the ticked items, or all matching the filters (at most MAX_BULK):
    first a confirmation page saying how many, then (with confirm=yes) the action, on
    those only: "all matching" is bounded by the newest id the confirmation counted."""
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        raise Http404
    permission = PERMISSIONS[action]
    if not quarantine.can_act(request.user, permission):
        raise _denied(permission)
    params = _params(request.POST)
    items, _ = _matching(request, params, permission)
    ids = [int(i) for i in request.POST.getlist("ids") if is_id(i)]
    ids = ids[: quarantine.MAX_BULK]
    scope_all = request.POST.get("scope") == "all"
    if not scope_all:
        items = items.filter(pk__in=ids)
    # "All matching" acts on what the confirmation counted: items held since (their ids
    # are higher) wait for another look.
    upto = request.POST.get("upto", "")
    if scope_all and is_id(upto):
        items = items.filter(pk__lte=int(upto))
    back = _back(params)
    if request.POST.get("confirm") != "yes":
        count = items.order_by()[: quarantine.MAX_BULK].count()
        if not count:
            messages.info(request, "No messages selected.")
            return redirect(back)
        context = {
            "action": action,
            "verb": ACTIONS[action],
            "count": count,
            "capped": count >= quarantine.MAX_BULK,
            "ids": ids,
            "scope_all": scope_all,
            "upto": items.order_by("-pk").values_list("pk", flat=True).first(),
            "filters": params,
            "back": back,
        }
        return render(request, "spamfilter/quarantine_confirm.html", context)
    if action == "release":
        result = quarantine.quarantine_release(actor=request.user, items=items)
        _report(request, "Released", result)
    else:
        result = quarantine.quarantine_delete(actor=request.user, items=items)
        _report(request, "Deleted", result)
    return redirect(back)


def _get(request: HttpRequest, pk: int, permission: str = quarantine.READ):
    try:
        return quarantine.quarantine_get(actor=request.user, item_id=pk, permission=permission)
    except NotFound:
        raise Http404 from None


def _may(actor, permission: str, item) -> bool:
    if actor.has_permission(permission):
        return True  # the item is in reach: it was found through the same scope
    return quarantine.quarantine_visible(actor, permission).filter(pk=item.pk).exists()


@any_permission_required(Perm.QUARANTINE_LIST, OWN)
def quarantine_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = _get(request, pk)
    tags = sorted(item.tags.items(), key=lambda tag: (-abs(tag[1]), tag[0]))
    context = {
        "item": item,
        "tags": tags,
        "headers": quarantine.headers_of(item),
        # This item's buttons: its own quarantine's reader may read others' it can't touch.
        "can_release": _may(request.user, quarantine.RELEASE, item),
        "can_delete": _may(request.user, quarantine.DELETE, item),
    }
    context["can_act"] = context["can_release"] or context["can_delete"]
    return render(request, "spamfilter/quarantine_detail.html", context)


@require_POST
@any_permission_required(Perm.QUARANTINE_RELEASE, OWN)
def quarantine_item_release(request: HttpRequest, pk: int) -> HttpResponse:
    item = _get(request, pk, quarantine.RELEASE)
    result = quarantine.quarantine_release_item(actor=request.user, item=item)
    _report(request, "Released", result)
    if result.failed and QuarantinedMessage.objects.filter(pk=item.pk).exists():
        return redirect("spamfilter:quarantine-detail", pk=item.pk)  # still held: why
    return redirect("spamfilter:quarantine")


@require_POST
@any_permission_required(Perm.QUARANTINE_DELETE, OWN)
def quarantine_item_delete(request: HttpRequest, pk: int) -> HttpResponse:
    item = _get(request, pk, quarantine.DELETE)
    items = quarantine.quarantine_visible(request.user, quarantine.DELETE).filter(pk=item.pk)
    _report(request, "Deleted", quarantine.quarantine_delete(actor=request.user, items=items))
    return redirect("spamfilter:quarantine")
