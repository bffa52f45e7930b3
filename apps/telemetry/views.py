"""Telemetry pages: the index, and the self-check (superadmins only)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.accounts.permissions import Perm
from apps.telemetry import selectors, services
from mailadmin.core.decorators import permission_required


@permission_required(Perm.METRICS_LIST)
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "telemetry/index.html", {"can_self_check": request.user.is_superuser})


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
