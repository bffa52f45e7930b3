"""Writing a batch of events: two statements, whatever the batch's size."""

from __future__ import annotations

from django.db import connection, transaction

from apps.telemetry.events import aggregate, trace_kind
from apps.telemetry.models import MetricBucket, Trace, TraceEvent

# The same upsert on PostgreSQL and SQLite (3.24+): counts add up across processes.
# Only our own table name is interpolated.
_UPSERT = (
    "INSERT INTO {table} (minute, name, kind, count, sum) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (minute, name) DO UPDATE SET "
    "count = {table}.count + excluded.count, sum = {table}.sum + excluded.sum"
).replace("{table}", MetricBucket._meta.db_table)


def write(items: list, dropped: int) -> None:
    buckets = aggregate(items, dropped)
    traced = [item for item in items if item[1]]
    starts: dict[str, tuple] = {}
    for type_, trace_id, at, _data in traced:
        starts.setdefault(trace_id, (type_, at))
    with transaction.atomic():
        if buckets:
            with connection.cursor() as cursor:
                cursor.executemany(
                    _UPSERT,
                    [
                        (minute, name, kind, count, total)
                        for (minute, name), (kind, count, total) in buckets.items()
                    ],
                )
        if traced:
            Trace.objects.bulk_create(
                [
                    Trace(id=trace_id[:64], kind=trace_kind(type_), started_at=at)
                    for trace_id, (type_, at) in starts.items()
                ],
                ignore_conflicts=True,
            )
            TraceEvent.objects.bulk_create(
                [
                    TraceEvent(trace_id=trace_id[:64], type=type_, created_at=at, data=data)
                    for type_, trace_id, at, data in traced
                ]
            )
