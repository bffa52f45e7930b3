"""Reads of stored traces, and their purge (server-wide: superadmins only)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.models import Principal
from apps.telemetry.events import EVENTS
from apps.telemetry.models import MetricBucket, Trace, TraceEvent
from apps.telemetry.selectors import require_telemetry_reader
from mailadmin.errors import NotFound

# The data keys a trace list shows with `values=1` (the first value seen of each).
VALUE_KEYS = ("remoteIp", "from", "to", "queueId", "domain", "login", "job", "reportType")


def trace_list(*, actor: Principal, type: str | None = None) -> QuerySet[Trace]:  # noqa: A002
    """Traces newest first; with `type`, those holding an event of that type."""
    require_telemetry_reader(actor)
    traces = Trace.objects.all()
    if type:
        traces = traces.filter(pk__in=TraceEvent.objects.filter(type=type).values("trace_id"))
    return traces


def trace_values(traces: list[Trace]) -> dict[str, dict]:
    """trace id -> its key values, for one page of traces (one query)."""
    values: dict[str, dict] = {t.id: {} for t in traces}
    events = TraceEvent.objects.filter(trace_id__in=list(values)).order_by("id")
    for trace_id, data in events.values_list("trace_id", "data"):
        found = values[trace_id]
        for key in VALUE_KEYS:
            if key in data and key not in found and data[key] not in ("", None):
                found[key] = data[key]
    return values


def trace_get(*, actor: Principal, trace_id: str) -> list[TraceEvent]:
    require_telemetry_reader(actor)
    events = list(TraceEvent.objects.filter(trace_id=trace_id).order_by("id"))
    if not events:
        raise NotFound(f"No trace {trace_id!r}: unknown, or purged after its retention.")
    return events


def event_as_dict(event: TraceEvent) -> dict:
    """The spec's event shape: text, details, createdAt, type, data."""
    text, details = EVENTS.get(event.type, (event.type, ""))
    return {
        "text": text,
        "details": details,
        "createdAt": event.created_at.isoformat().replace("+00:00", "Z"),
        "type": event.type,
        "data": event.data,
    }


PURGE_BATCH = 5000


def telemetry_purge(*, now=None, days: int) -> tuple[int, int]:
    """Delete traces (with their events) and metric buckets older than `days` (0 keeps
    everything), a batch per transaction so no one statement holds a big table long:
    (traces, buckets) deleted."""
    if days <= 0:
        return 0, 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    traces = 0
    while True:
        ids = list(
            Trace.objects.filter(started_at__lt=cutoff).values_list("id", flat=True)[:PURGE_BATCH]
        )
        if not ids:
            break
        TraceEvent.objects.filter(trace_id__in=ids).delete()
        traces += Trace.objects.filter(id__in=ids).delete()[0]
    buckets = MetricBucket.objects.filter(minute__lt=cutoff).delete()[0]
    return traces, buckets
