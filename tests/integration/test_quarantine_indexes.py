"""On PostgreSQL each of the quarantine list's filters reads through an index of its own:
a tenant admin's list (and its count) filtered by mailbox, domain, quarantine or sender
does not walk every item of the tenant."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.spamfilter import quarantine
from apps.spamfilter.models import QuarantinedMessage

pytestmark = pytest.mark.integration
MAILBOXES = 50
PER_MAILBOX = 400


def plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def held(make_principal, make_tenant):
    """20,000 items of one tenant: 50 mailboxes in 10 domains, one in 50 of them in a
    domain quarantine, each sender writing to one mailbox."""
    tenant = make_tenant()
    boxes = [
        make_principal(tenant=tenant, roles=(), password="", name=f"box{i}")
        for i in range(MAILBOXES)
    ]
    now = timezone.now()
    QuarantinedMessage.objects.bulk_create(
        (
            QuarantinedMessage(
                tenant=tenant,
                mailbox=box,
                kind="domain" if j % 50 == 0 else "mailbox",
                domain=f"d{i % 10}.example",
                owner=f"box{i}@d{i % 10}.example",
                recipient=f"box{i}@d{i % 10}.example",
                sender=f"bulk{i}-{j % 7}@sender{i}.test",
                from_address=f"news{i}@sender{i}.test",
                subject=f"Offer {j}",
                size=1000,
                blob_hash="0" * 64,
                received_at=now - timedelta(seconds=i * PER_MAILBOX + j),
            )
            for i, box in enumerate(boxes)
            for j in range(PER_MAILBOX)
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE spamfilter_quarantinedmessage")
    return tenant


@pytest.mark.parametrize(
    ("params", "index"),
    [
        ({"mailbox": "box7@d7.example"}, "spam_quar_recipient_idx"),
        ({"mailbox": "box7"}, "spam_quar_mailbox_idx"),
        ({"domain": "d3.example"}, "spam_quar_domain_idx"),
        ({"kind": "domain"}, "spam_quar_kind_idx"),
        ({"sender": "bulk12-3"}, "spam_quar_sender_trgm"),
        ({"sender": "news12@"}, "spam_quar_from_trgm"),
    ],
)
def test_each_filter_reads_through_its_index(held, make_principal, params, index):
    admin = make_principal(tenant=held, roles=["tenant-admin"], name="quarantine-admin")
    items = quarantine.quarantine_list(actor=admin, filters=quarantine.parse_filters(params))
    matching = items.order_by().values("pk")  # what the page's count reads
    found = plan(matching)
    assert index in found, found
    assert items.count() > 0
