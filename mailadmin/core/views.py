"""Dashboard, task progress, and the error pages of the console."""

from __future__ import annotations

from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import render

from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import Perm
from mailadmin.core.decorators import permission_required
from mailadmin.core.progress import task_run_get, task_run_list
from mailadmin.errors import NotFound
from mailadmin.tenancy import scope


@permission_required(Perm.DASHBOARD)
def dashboard(request) -> HttpResponse:
    actor = request.user
    principals = scope(Principal.objects.all(), actor)
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
    if actor.is_superuser:
        cards.insert(0, ("Tenants", counts["tenants"]))
    # What people started: the hourly scheduled checks of every domain would crowd it out.
    runs = task_run_list(actor=actor).exclude(actor_name="")[:5]
    return render(request, "core/dashboard.html", {"cards": cards, "runs": runs})


@permission_required(Perm.DASHBOARD)
def task_status(request, run_id) -> HttpResponse:
    try:
        run = task_run_get(actor=request.user, run_id=run_id)
    except NotFound:
        raise Http404 from None
    # The fragment polls itself (outerHTML) until it renders a finished run without a trigger.
    return render(request, "core/task_progress.html", {"run": run})


def not_built(section: str, summary: str, permission: str):
    """The index of an app whose features have not landed: says so plainly."""

    @permission_required(permission)
    def view(request) -> HttpResponse:
        return render(request, "core/not_built.html", {"section": section, "summary": summary})

    return view
