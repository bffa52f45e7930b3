"""Telemetry pages: metrics (charts and a live view) and traces (list, timeline).

Superadmins only, as the API: the selectors refuse anyone else (403)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.permissions import Perm
from apps.telemetry import live
from apps.telemetry.events import EVENTS
from apps.telemetry.metrics import CHART_SERIES, chart_series
from apps.telemetry.selectors import SuperadminOnly
from apps.telemetry.traces import event_as_dict, trace_get, trace_list, trace_values
from mailadmin.api.pagination import paginate_query
from mailadmin.core.decorators import permission_required
from mailadmin.errors import NotFound

HOURS = (1, 6, 24)
PAGE_SIZE = 50


@permission_required(Perm.METRICS_LIST)
def metrics(request: HttpRequest) -> HttpResponse:
    raw = request.GET.get("hours", "")
    hours = int(raw) if raw in {str(h) for h in HOURS} else HOURS[0]
    try:
        chart = chart_series(actor=request.user, hours=hours)
        token = (
            live.token_issue(actor=request.user, stream="metrics")
            if request.user.has_permission(Perm.METRICS_LIVE)
            else ""
        )
    except SuperadminOnly as exc:
        raise PermissionDenied(exc.message) from None
    totals = {key: sum(values) for key, values in chart["series"].items()}
    context = {
        "chart": chart,
        "hours": hours,
        "hour_choices": HOURS,
        "totals": totals,
        "series_names": CHART_SERIES,
        "live_token": token,
    }
    return render(request, "telemetry/metrics.html", context)


@permission_required(Perm.TRACING_LIST)
def traces(request: HttpRequest) -> HttpResponse:
    type_ = request.GET.get("type", "")[:60]
    try:
        listing = trace_list(actor=request.user, type=type_ or None)
    except SuperadminOnly as exc:
        raise PermissionDenied(exc.message) from None
    pagination = paginate_query(request.GET, listing, limit=PAGE_SIZE)
    values = trace_values(list(pagination.page.items))
    rows = [(t, values.get(t.id, {})) for t in pagination.page.items]
    context = {"rows": rows, "pagination": pagination, "type": type_, "types": sorted(EVENTS)}
    template = "telemetry/traces.html"
    if request.htmx:
        template += "#trace-table"
    return render(request, template, context)


@permission_required(Perm.TRACING_GET)
def trace(request: HttpRequest, trace_id: str) -> HttpResponse:
    try:
        found = trace_get(actor=request.user, trace_id=trace_id)
    except SuperadminOnly as exc:
        raise PermissionDenied(exc.message) from None
    except NotFound as exc:
        raise Http404(exc.message) from None
    timeline = [event_as_dict(e) | {"at": e.created_at} for e in found]
    return render(request, "telemetry/trace.html", {"trace_id": trace_id, "events": timeline})
