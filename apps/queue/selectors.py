"""Reads of the outbound queue, scoped to what the acting principal may see.

Tenant isolation lives in `_visible` (mailadmin.tenancy.scope on the message's tenant): a
tenant admin sees its tenant's messages, a superadmin all of them, anyone else nothing.
Another tenant's message is simply not found (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from apps.accounts.models import Principal
from apps.queue.models import QueuedMessage, QueueDomain, QueueRecipient, QueueSample, Status
from mailadmin.errors import NotFound, ValidationFailed
from mailadmin.tenancy import scope

STATUSES = tuple(Status.values)


@dataclass(frozen=True)
class QueueFilters:
    text: str = ""  # any of: recipient, sender, domain, subject (part of)
    recipient: str = ""
    sender: str = ""
    domain: str = ""
    status: str = ""
    since: datetime | None = None
    until: datetime | None = None

    @property
    def empty(self) -> bool:
        return self == QueueFilters()


def _visible(actor: Principal) -> QuerySet[QueuedMessage]:
    return scope(QueuedMessage.objects.all(), actor)


def queued_messages_visible(actor: Principal) -> QuerySet[QueuedMessage]:
    """The one scoping rule for queued mail (the store's blob_visible asks it too)."""
    return _visible(actor)


def message_list(*, actor: Principal, filters: QueueFilters) -> QuerySet[QueuedMessage]:
    """Messages newest first, each with its domains and their recipients (3 queries a page)."""
    messages = _visible(actor)
    if filters.status:
        if filters.status not in STATUSES:
            raise ValidationFailed(
                f"Unknown status: {filters.status}. One of: " + ", ".join(STATUSES),
                field="status",
            )
        messages = messages.filter(status=filters.status)
    if filters.recipient:
        messages = messages.filter(
            Exists(
                QueueRecipient.objects.filter(
                    message=OuterRef("pk"), address__iexact=filters.recipient
                )
            )
        )
    if filters.sender:
        sender = "" if filters.sender in ("<>", '""') else filters.sender
        messages = messages.filter(return_path__iexact=sender)
    if filters.domain:
        messages = messages.filter(
            Exists(
                QueueDomain.objects.filter(
                    message=OuterRef("pk"), name=filters.domain.lower().rstrip(".")
                )
            )
        )
    if filters.since is not None:
        messages = messages.filter(created__gte=filters.since)
    if filters.until is not None:
        messages = messages.filter(created__lte=filters.until)
    if filters.text:
        text = filters.text
        messages = messages.filter(
            Q(return_path__icontains=text)
            | Q(subject__icontains=text)
            | Exists(QueueRecipient.objects.filter(message=OuterRef("pk"), address__icontains=text))
        )
    return messages.order_by("-created", "-id")


def with_details(messages: QuerySet[QueuedMessage]) -> QuerySet[QueuedMessage]:
    recipients = Prefetch("recipients", queryset=QueueRecipient.objects.order_by("id"))
    domains = Prefetch(
        "domains", queryset=QueueDomain.objects.order_by("id").prefetch_related(recipients)
    )
    return messages.prefetch_related(domains)


def message_get(*, actor: Principal, message_id: int | str) -> QuerySet[QueuedMessage] | None:
    try:
        pk = int(message_id)
    except (TypeError, ValueError):
        raise NotFound() from None
    message = with_details(_visible(actor).filter(pk=pk)).first()
    if message is None:
        raise NotFound()
    return message


def message_scoped(*, actor: Principal, message: QueuedMessage) -> QuerySet[QueuedMessage]:
    """The one message as a queryset (for the services' bulk operations)."""
    return _visible(actor).filter(pk=message.pk)


def queue_running() -> bool:
    from apps.queue.delivery import queue_running as running

    return running()


def queue_sizes(*, actor: Principal, hours: int = 24) -> list[QueueSample]:
    """The queue-size samples of the last `hours` for the actor's chart: the whole queue for
    a superadmin, the tenant's own messages for a tenant admin."""
    since = timezone.now() - timedelta(hours=hours)
    samples = QueueSample.objects.filter(at__gte=since).order_by("at")
    if actor.reaches_all_tenants:
        return list(samples.filter(tenant=None))
    if actor.tenant_id is None:
        return []
    tenant_samples = {s.at: s.size for s in samples.filter(tenant_id=actor.tenant_id)}
    # A tenant with nothing queued has no row at that moment: it was 0 then.
    return [
        QueueSample(at=s.at, size=tenant_samples.get(s.at, 0), tenant_id=actor.tenant_id)
        for s in samples.filter(tenant=None)
    ]


CHIP_CAP = 10_000


def status_counts(*, actor: Principal) -> dict[str, int]:
    """Messages per status for the chips, each counted up to CHIP_CAP (never an unbounded
    COUNT: delivered messages pile up until they are pruned)."""
    visible = _visible(actor)
    return {
        status: visible.filter(status=status).order_by()[:CHIP_CAP].count() for status in STATUSES
    }
