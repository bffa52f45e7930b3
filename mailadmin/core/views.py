"""Dashboard, task progress, and the error pages of the console."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import Perm
from apps.accounts.principals.selectors import principal_scope
from mailadmin.converters import is_id
from mailadmin.core.decorators import permission_required
from mailadmin.core.progress import task_run_get, task_run_list
from mailadmin.core.tenants import narrow, select_tenant, selected_tenant
from mailadmin.errors import NotFound


@permission_required(Perm.DASHBOARD)
def dashboard(request) -> HttpResponse:
    actor = request.user
    principals = narrow(principal_scope(actor), request)
    counts = principals.aggregate(
        **{
            kind.value: Count("pk", filter=Q(type=kind.value))
            for kind in (
                PrincipalType.INDIVIDUAL,
                PrincipalType.GROUP,
                PrincipalType.LIST,
                PrincipalType.DOMAIN,
                PrincipalType.API_KEY,
            )
        },
        tenants=Count("pk", filter=Q(type=PrincipalType.TENANT)),
    )
    cards = [
        ("Accounts", counts[PrincipalType.INDIVIDUAL]),
        ("Groups", counts[PrincipalType.GROUP]),
        ("Mailing lists", counts[PrincipalType.LIST]),
        ("Domains", counts[PrincipalType.DOMAIN]),
        ("API keys", counts[PrincipalType.API_KEY]),
    ]
    if actor.reaches_all_tenants and selected_tenant(request) is None:
        cards.insert(0, ("Tenants", counts["tenants"]))
    # What people started: the hourly scheduled checks of every domain would crowd it out.
    runs = narrow(task_run_list(actor=actor), request).exclude(actor_name="")[:5]
    return render(request, "core/dashboard.html", {"cards": cards, "runs": runs})


@permission_required(Perm.DASHBOARD)
def task_status(request, run_id) -> HttpResponse:
    try:
        run = task_run_get(actor=request.user, run_id=run_id)
    except NotFound:
        raise Http404 from None
    # The fragment polls itself (outerHTML) until it renders a finished run without a trigger.
    response = render(request, "core/task_progress.html", {"run": run})
    if run.finished:
        # The poll that sees the end tells the page, which may refresh what the run changed
        # (hx-trigger="task-finished from:body", e.g. a domain's records table).
        response["HX-Trigger"] = json.dumps({"task-finished": {"kind": run.kind}})
    return response


def _back_to(request: HttpRequest, candidate: str) -> str:
    """Where the switcher was used (same site only), without its page number: the
    narrowed list may have fewer pages."""
    if not candidate or not url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return reverse("dashboard")
    parts = urlsplit(candidate)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "page"])
    return urlunsplit(("", "", parts.path, query, ""))


@require_POST
@permission_required(Perm.TENANT_LIST)
def tenant_switch(request: HttpRequest) -> HttpResponse:
    """The superadmin picks a tenant (or "" for all); the lists then show only its rows."""
    if not request.user.reaches_all_tenants:
        raise PermissionDenied("Only superadmins switch between tenants.")
    back = _back_to(request, request.POST.get("next", ""))
    value = (request.POST.get("tenant") or "").strip()
    if not value:
        select_tenant(request, None)
        return redirect(back)
    tenant = None
    if is_id(value):
        tenant = Principal.objects.filter(pk=int(value), type=PrincipalType.TENANT).first()
    if tenant is None:
        messages.error(request, "No such tenant.")
        return redirect(back)
    select_tenant(request, tenant)
    return redirect(back)


def not_built(section: str, summary: str, permission: str):
    """The index of an app whose features have not landed: says so plainly."""

    @permission_required(permission)
    def view(request) -> HttpResponse:
        return render(request, "core/not_built.html", {"section": section, "summary": summary})

    return view
