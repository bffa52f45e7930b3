"""Telemetry pages: the index, and the self-check (superadmins only)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from rest_framework.exceptions import ValidationError

from apps.accounts.permissions import Perm
from apps.telemetry import selectors, services
from mailadmin.core.decorators import permission_required


@permission_required(Perm.METRICS_LIST)
def index(request: HttpRequest) -> HttpResponse:
    return render(
        request, "telemetry/index.html", {"can_self_check": request.user.reaches_all_tenants}
    )


@require_http_methods(["GET", "POST"])
@permission_required(Perm.TROUBLESHOOT)
def self_check(request: HttpRequest) -> HttpResponse:
    """GET shows the latest run; POST starts one (its progress swaps in under htmx)."""
    try:
        if request.method == "POST":
            run = services.self_check_start(actor=request.user)
            if request.htmx:
                return render(request, "core/task_progress.html", {"run": run})
            return redirect("telemetry:self-check")
        run = selectors.self_check_latest(actor=request.user)
    except selectors.SuperadminOnly as exc:
        raise PermissionDenied(exc.message) from None
    return render(request, "telemetry/self_check.html", {"run": run})


# --- logs and delivery troubleshooting (apps.telemetry.logs / troubleshoot) -----------------


@permission_required(Perm.LOGS_VIEW)
def logs(request: HttpRequest) -> HttpResponse:
    """The server's own records, newest first; the table refreshes itself every 10 s."""
    from apps.telemetry import tools_api, troubleshoot
    from mailadmin.errors import ServiceError

    try:
        body = tools_api.log_list(actor=request.user, query=request.GET)
        error = ""
    except troubleshoot.SuperadminOnly as exc:
        raise PermissionDenied(exc.message) from None
    except ValidationError as exc:
        body, error = (
            {"items": [], "total": 0},
            "; ".join(str(m) for messages in exc.detail.values() for m in messages),
        )
    except ServiceError as exc:
        body, error = {"items": [], "total": 0}, exc.message
    query = request.GET.copy()
    context = {
        "items": body["items"],
        "total": body["total"],
        "error": error,
        "level": request.GET.get("level", ""),
        "text": request.GET.get("text", ""),
        "levels": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        "refresh_url": f"{request.path}?{query.urlencode()}",
    }
    template = "telemetry/logs.html"
    if request.htmx:
        template += "#log-table"
    return render(request, template, context, status=422 if error else 200)


@permission_required(Perm.TROUBLESHOOT)
def troubleshoot_delivery(request: HttpRequest) -> HttpResponse:
    """Enter a recipient: the page opens the event stream with a fresh token (superadmins)."""
    from apps.telemetry import troubleshoot

    try:
        token = troubleshoot.token_issue(actor=request.user)
    except troubleshoot.SuperadminOnly as exc:
        raise PermissionDenied(exc.message) from None
    return render(
        request,
        "telemetry/troubleshoot_delivery.html",
        {"token": token, "recipient": request.GET.get("recipient", "")},
    )
