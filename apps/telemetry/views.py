from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import Perm
from apps.telemetry.services import self_check_start
from mailadmin.core.decorators import permission_required
from mailadmin.core.progress import task_run_list


@permission_required(Perm.METRICS_LIST)
def index(request) -> HttpResponse:
    last = task_run_list(actor=request.user).filter(kind="self-check").first()
    return render(request, "telemetry/index.html", {"run": last})


@require_POST
@permission_required(Perm.TASK_START)
def self_check(request) -> HttpResponse:
    run = self_check_start(actor=request.user)
    if request.htmx:
        return render(request, "core/task_progress.html", {"run": run})
    return render(request, "telemetry/index.html", {"run": run})
