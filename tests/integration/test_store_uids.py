"""Concurrent deliveries into one folder on PostgreSQL never share a UID."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.store import services
from apps.store.models import Folder, Message

pytestmark = pytest.mark.integration


@pytest.mark.django_db(transaction=True)
def test_it_gives_concurrent_deliveries_distinct_uids(make_principal, make_tenant):
    tenant = make_tenant()
    jane = make_principal(tenant=tenant, roles=(), name="jane", password="")
    threads_count, per_thread = 8, 10
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                services.deliver(jane, f"Subject: {n}-{i}\r\n\r\nbody {n} {i}\r\n".encode())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    total = threads_count * per_thread
    uids = sorted(Message.objects.filter(principal=jane).values_list("uid", flat=True))
    assert uids == list(range(1, total + 1))
    assert Folder.objects.filter(principal=jane).count() == 4  # first use raced, no duplicates
    assert Folder.objects.get(principal=jane, name="INBOX").uidnext == total + 1
