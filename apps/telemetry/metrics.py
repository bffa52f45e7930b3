"""Reads of the metric buckets (server-wide: superadmins only, see selectors)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Sum
from django.utils import timezone

from apps.accounts.models import Principal
from apps.telemetry.models import MetricBucket
from apps.telemetry.selectors import require_telemetry_reader

DEFAULT_WINDOW = timedelta(hours=1)
MAX_ROWS = 50_000  # a week of minutes for a handful of names; past it the oldest are cut

# What the console's charts show: a line per series, each the per-minute count of an event.
CHART_SERIES = {
    "in": "smtp.message-accepted",
    "out": "submission.message-queued",
    "delivered": "delivery.delivered",
    "deferred": "delivery.deferred",
    "rejected": "smtp.message-rejected",
}


def bucket_as_dict(bucket: MetricBucket) -> dict:
    item = {"name": bucket.name, "type": bucket.kind, "timestamp": bucket.minute.isoformat()}
    if bucket.kind == MetricBucket.Kind.HISTOGRAM:
        item.update(count=bucket.count, sum=bucket.sum)
    else:
        item["value"] = bucket.count
    return item


def metrics_since(*, actor: Principal, after: datetime | None) -> list[dict]:
    """Every metric's minutes after `after` (default: the last hour), oldest first."""
    require_telemetry_reader(actor)
    after = after or timezone.now() - DEFAULT_WINDOW
    rows = MetricBucket.objects.filter(minute__gt=after).order_by("-minute", "name")[:MAX_ROWS]
    return [bucket_as_dict(b) for b in reversed(list(rows))]


def metrics_current(*, names: list[str] | None = None, window: timedelta) -> dict[str, dict]:
    """Totals over the last `window` per metric name (the live stream's snapshot)."""
    rows = MetricBucket.objects.filter(minute__gte=timezone.now() - window)
    if names:
        rows = rows.filter(name__in=names)
    totals = rows.values("name", "kind").annotate(count=Sum("count"), sum=Sum("sum"))
    out = {}
    for row in totals.order_by("name"):
        if row["kind"] == MetricBucket.Kind.HISTOGRAM:
            out[row["name"]] = {"type": "histogram", "count": row["count"], "sum": row["sum"]}
        else:
            out[row["name"]] = {"type": "counter", "value": row["count"]}
    return out


def chart_series(*, actor: Principal, hours: int) -> dict:
    """Per-minute counts of the chart's series over the last `hours`, zeros filled in."""
    require_telemetry_reader(actor)
    end = timezone.now().replace(second=0, microsecond=0)
    start = end - timedelta(hours=hours)
    minutes = [start + timedelta(minutes=i) for i in range(hours * 60 + 1)]
    index = {m: i for i, m in enumerate(minutes)}
    series = {key: [0] * len(minutes) for key in CHART_SERIES}
    by_name = {name: key for key, name in CHART_SERIES.items()}
    rows = MetricBucket.objects.filter(minute__gte=start, name__in=list(by_name))
    for minute, name, count in rows.values_list("minute", "name", "count"):
        i = index.get(minute)
        if i is not None:
            series[by_name[name]][i] = count
    return {"labels": [m.strftime("%H:%M") for m in minutes], "series": series}
