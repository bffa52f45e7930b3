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


@pytest.mark.django_db(transaction=True)
def test_a_uid_reset_during_deliveries_leaves_distinct_ascending_uids(
    make_principal, make_tenant, superadmin
):
    """Resets lock the folders: a delivery waits, then takes the next UID of the new
    numbering; no UID is shared and uidnext stays above every UID."""
    from apps.store import maintenance

    tenant = make_tenant()
    jane = make_principal(tenant=tenant, roles=(), name="jane", password="")
    services.folders_ensure(jane)
    threads_count, per_thread, resets = 4, 15, 6
    barrier = threading.Barrier(threads_count + 1)
    errors: list[BaseException] = []

    def deliver(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                services.deliver(jane, f"Subject: {n}-{i}\r\n\r\nbody {n} {i}\r\n".encode())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    def reset() -> None:
        try:
            barrier.wait()
            for _ in range(resets):
                maintenance.uids_reset(actor=superadmin, account_id=jane.pk)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(threads_count)]
    threads.append(threading.Thread(target=reset))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    inbox = Folder.objects.get(principal=jane, name="INBOX")
    uids = sorted(Message.objects.filter(folder=inbox).values_list("uid", flat=True))
    assert len(uids) == len(set(uids)) == threads_count * per_thread
    assert inbox.uidnext > uids[-1]
    # One more reset afterwards numbers them 1..n exactly.
    assert maintenance.uids_reset(actor=superadmin, account_id=jane.pk) == (4, len(uids))
    renumbered = sorted(Message.objects.filter(folder=inbox).values_list("uid", flat=True))
    assert renumbered == list(range(1, len(uids) + 1))
