"""On PostgreSQL the message list and the quota sum read through their indexes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from apps.store import selectors, services
from apps.store.models import Folder, Message

pytestmark = pytest.mark.integration


def plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_it_pages_and_sums_through_the_indexes(make_principal, make_tenant, superadmin):
    tenant = make_tenant()
    boxes = [make_principal(tenant=tenant, roles=(), password="") for _ in range(4)]
    now = timezone.now()
    for box in boxes:
        services.folders_ensure(box)
    folders = {f.principal_id: f for f in Folder.objects.filter(name="INBOX")}
    Message.objects.bulk_create(
        Message(
            folder=folders[box.pk],
            principal=box,
            uid=i + 1,
            blob_hash="0" * 64,
            size=1000 + i,
            received_at=now - timezone.timedelta(seconds=i),
        )
        for box in boxes
        for i in range(5000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE store_message")

    listing = selectors.message_list(
        actor=superadmin, mailbox=boxes[1], folder=folders[boxes[1].pk]
    )
    assert "store_msg_list_idx" in plan(listing[50:100])
    quota = Message.objects.filter(principal=boxes[2]).values("principal").annotate(Sum("size"))
    assert "store_msg_quota_idx" in plan(quota)
    assert services.used_bytes(boxes[2]) == sum(1000 + i for i in range(5000))
