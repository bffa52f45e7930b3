"""What telemetry keeps: metric buckets (one row per name per minute) and trace events.

Both are written in batches by apps.telemetry.events (never one row per event in the hot
path) and purged after MAILADMIN_TELEMETRY_RETENTION_DAYS.
"""

from __future__ import annotations

from django.db import models


class MetricBucket(models.Model):
    """One metric over one minute: a counter's `count`, or a histogram's `count` and `sum`."""

    class Kind(models.TextChoices):
        COUNTER = "counter"
        HISTOGRAM = "histogram"

    minute = models.DateTimeField()
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.COUNTER)
    count = models.BigIntegerField(default=0)
    sum = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["minute", "name"], name="telemetry_bucket_unique")
        ]
        ordering = ["minute", "name"]

    def __str__(self) -> str:
        return f"{self.name}@{self.minute:%Y-%m-%d %H:%M}"


class Trace(models.Model):
    """One traced unit of work: an SMTP session, one queued message's delivery, a fetch
    run, a report ingestion. Its id is chosen by whoever emits the first event."""

    id = models.CharField(primary_key=True, max_length=64)
    kind = models.CharField(max_length=20)  # smtp, delivery, fetch, report
    started_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return self.id


class TraceEvent(models.Model):
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=60)
    created_at = models.DateTimeField()
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["type", "trace"], name="telemetry_event_type"),
            models.Index(fields=["created_at"], name="telemetry_event_created"),
        ]

    def __str__(self) -> str:
        return f"{self.trace_id} {self.type}"
