"""Writing a batch of events: two statements, whatever the batch's size."""

from __future__ import annotations

import json

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
    with transaction.atomic():  # a batch is written whole or not at all
        if buckets:
            with connection.cursor() as cursor:
                cursor.executemany(
                    _UPSERT,
                    [
                        (connection.ops.adapt_datetimefield_value(minute), name, kind, count, total)
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
            _insert_events(traced)


_EVENT_COLUMNS = "trace_id, type, created_at, data"


def _insert_events(traced: list) -> None:
    """One COPY on PostgreSQL (a bulk INSERT spends most of its time turning thousands of
    parameters into the query), executemany on SQLite (in process)."""
    dumps = json.JSONEncoder(default=str).encode  # an odd value becomes its text
    table = connection.ops.quote_name(TraceEvent._meta.db_table)
    when = connection.ops.adapt_datetimefield_value  # SQLite: Django's own text form
    rows = [(t[:64], type_[:60], when(at), dumps(data)) for type_, t, at, data in traced]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            sql = f"INSERT INTO {table} ({_EVENT_COLUMNS}) VALUES (%s, %s, %s, %s)"  # noqa: S608
            cursor.executemany(sql, rows)
            return
        with cursor.cursor.copy(f"COPY {table} ({_EVENT_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
