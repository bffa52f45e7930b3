"""The queue API's shapes (management API: Obtain Queued Message Details) and its filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from apps.queue.models import QueuedMessage
from apps.queue.selectors import STATUSES, QueueFilters
from mailadmin.api.serializers import date_time_param
from mailadmin.errors import ValidationFailed


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def message_item(message: QueuedMessage) -> dict[str, Any]:
    """The spec's shape (domains → recipients), plus each recipient's last answer."""
    return {
        "id": message.pk,
        "return_path": message.return_path,
        "domains": [
            {
                "name": domain.name,
                "status": domain.status,
                "recipients": [
                    {
                        "address": r.address,
                        "status": r.status,
                        "code": r.code,
                        "response": r.response,
                    }
                    for r in domain.recipients.all()
                ],
                "retry_num": domain.retry_num,
                "next_retry": _iso(domain.next_retry),
                "next_notify": _iso(domain.next_notify),
                "expires": _iso(domain.expires),
                "tls": domain.tls,
                "last_error": domain.last_error,
            }
            for domain in message.domains.all()
        ],
        "created": _iso(message.created),
        "size": message.size,
        "blob_hash": message.blob_hash,
        "subject": message.subject,
        "status": message.status,
    }


RECIPIENT = inline_serializer(
    name="QueuedRecipient",
    fields={
        "address": serializers.CharField(),
        "status": serializers.CharField(),
        "code": serializers.IntegerField(allow_null=True),
        "response": serializers.CharField(help_text="The remote server's last answer"),
    },
)
DOMAIN = inline_serializer(
    name="QueuedDomain",
    fields={
        "name": serializers.CharField(),
        "status": serializers.CharField(),
        "recipients": serializers.ListField(child=RECIPIENT),
        "retry_num": serializers.IntegerField(),
        "next_retry": serializers.DateTimeField(),
        "next_notify": serializers.DateTimeField(allow_null=True),
        "expires": serializers.DateTimeField(),
        "tls": serializers.BooleanField(allow_null=True),
        "last_error": serializers.CharField(),
    },
)
MESSAGE = inline_serializer(
    name="QueuedMessage",
    fields={
        "id": serializers.IntegerField(),
        "return_path": serializers.CharField(help_text='"" for the null sender'),
        "domains": serializers.ListField(child=DOMAIN),
        "created": serializers.DateTimeField(),
        "size": serializers.IntegerField(),
        "blob_hash": serializers.CharField(),
        "subject": serializers.CharField(),
        "status": serializers.CharField(),
    },
)


def parse_filters(params) -> QueueFilters:
    """Query parameters → filters. The text filter answers to `text`, `filter` and
    `values` (the spec names all three on its queue operations)."""

    def get(name: str, size: int = 320) -> str:
        return (params.get(name) or "").strip()[:size]

    status = params.get("status")
    if status is not None and status.strip().lower() not in STATUSES:
        raise ValidationFailed(
            f"Unknown status: {status[:32]}. One of: " + ", ".join(STATUSES), field="status"
        )

    return QueueFilters(
        text=get("text") or get("filter") or get("values"),
        recipient=get("recipient"),
        sender=get("sender"),
        domain=get("domain", 255),
        status=get("status", 16).lower(),
        since=date_time_param(params.get("from"), "from"),
        until=date_time_param(params.get("to"), "to", end=True),
    )
