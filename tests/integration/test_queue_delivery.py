"""Real delivery workers (Celery processes on Redis and PostgreSQL) delivering to the
loopback SMTP sink through the loopback DNS server: stop/start, and a worker killed with
SIGKILL mid-delivery losing nothing and duplicating nothing."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.queue import delivery
from apps.queue.models import QueueDomain, QueueRecipient
from apps.queue.services import enqueue, queue_start, queue_stop
from tests.integration.test_task_recovery import wait_for
from tests.support.worker import Worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def remote_mx(dns_server, smtp_sink, settings):
    dns_server.set_zone("remote.test", {"MX": [(10, "mx.remote.test.")]})
    dns_server.set_zone("mx.remote.test", {"A": ["127.0.0.1"]})
    blob_dir = getattr(settings, "MAILADMIN_BLOB_DIR", None)  # the worker reads the same blobs
    return {
        **({"MAILADMIN_BLOB_DIR": str(blob_dir)} if blob_dir else {}),
        "MAILADMIN_DNS_NAMESERVERS": dns_server.address,
        "MAILADMIN_SMTP_REMOTE_PORT": str(smtp_sink.port),
        "MAILADMIN_QUEUE_LEASE_SECONDS": "2",
    }


def data(n: int) -> bytes:
    return f"From: s@origin.test\r\nSubject: message {n}\r\n\r\nbody {n}\r\n".encode()


def delivered_count() -> int:
    return QueueRecipient.objects.filter(status="delivered").count()


def test_it_delivers_nothing_while_stopped_and_everything_once_started(
    remote_mx, smtp_sink, superadmin
):
    worker = Worker(remote_mx).start()
    try:
        queue_stop(actor=superadmin)
        queued = enqueue(return_path="s@origin.test", recipients=["a@remote.test"], data=data(1))
        # the worker got the wake-up and refused to start: the entry is untouched
        wait_for(lambda: "queue.deliver" in worker.log(), timeout=20, what="the wake-up")
        wait_for(
            lambda: "succeeded" in worker.log(), timeout=20, what="the task to end", worker=worker
        )
        assert smtp_sink.messages == []
        assert QueueDomain.objects.get(message=queued).status == "scheduled"
        queue_start(actor=superadmin)
        received = smtp_sink.wait_for(1, timeout=30)
    finally:
        worker.stop()
    assert received[0].rcpt_tos == ["a@remote.test"]
    assert QueueRecipient.objects.get(message=queued).status == "delivered"


def test_a_worker_killed_mid_delivery_loses_and_duplicates_nothing(remote_mx, smtp_sink):
    smtp_sink.handler.rcpt_delay = 0.05  # a slow peer: the kill lands before any DATA
    first = Worker(remote_mx).start()
    second = None
    try:
        addresses = []
        for n in range(30):
            to = [f"r{n}a@remote.test", f"r{n}b@remote.test"]
            addresses += to
            enqueue(return_path="s@origin.test", recipients=to, data=data(n))
        wait_for(lambda: delivered_count() >= 10, timeout=60, what="some deliveries", worker=first)
        assert smtp_sink.handler.in_rcpt.wait(10)  # the worker waits for a RCPT answer
        first.kill()
        killed_at = delivered_count()
        assert killed_at < len(addresses)
        held = QueueDomain.objects.filter(status="scheduled", lease_expires_at__isnull=False)
        assert held.count() >= 1  # the entries it held stay claimed...
        wait_for(
            lambda: not held.filter(lease_expires_at__gt=timezone.now()).exists(),
            timeout=10,
            what="its lease to lapse",
        )
        second = Worker(remote_mx, queue=first.queue).start()
        delivery.sweep(grace=timedelta(0))  # the beat's tick: wakes every due entry
        wait_for(
            lambda: delivered_count() == len(addresses),
            timeout=90,
            what="the second worker to deliver the rest",
            worker=second,
        )
    finally:
        if second is not None:
            second.stop()
        first.stop()
    received = Counter(r for m in smtp_sink.messages for r in m.rcpt_tos)
    assert received == Counter(addresses)  # every recipient exactly once
    assert not QueueDomain.objects.exclude(status="delivered").exists()


def test_concurrent_claims_on_postgresql_never_take_an_entry_twice(monkeypatch):
    """Eight threads, each with its own PostgreSQL connection, race to claim 300 due
    entries in batches: every entry is claimed exactly once."""
    import threading

    from django.db import connections

    monkeypatch.setattr(delivery, "wake", lambda domain_id: None)
    for n in range(300):
        enqueue(return_path="", recipients=[f"r{n}@remote.test"], data=data(n))
    claimed: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claimer() -> None:
        try:
            start.wait()
            while True:
                claim_id, taken = delivery.claim_batch(7)
                if not taken:
                    if not QueueDomain.objects.filter(lease_expires_at__isnull=True).exists():
                        return
                    continue
                ids = list(
                    QueueDomain.objects.filter(claim_id=claim_id).values_list("pk", flat=True)
                )
                assert len(ids) == taken
                with lock:
                    claimed.extend(ids)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(claimed) == 300
    assert len(set(claimed)) == 300


def test_two_workers_deliver_each_recipient_exactly_once(remote_mx, smtp_sink):
    first = Worker(remote_mx).start()
    second = Worker(remote_mx, queue=first.queue).start()
    try:
        addresses = [f"r{n}@remote.test" for n in range(150)]
        for n, address in enumerate(addresses):
            enqueue(return_path="s@origin.test", recipients=[address], data=data(n))
        wait_for(
            lambda: delivered_count() == len(addresses),
            timeout=120,
            what="all deliveries",
            worker=second,
        )
        time.sleep(1)  # a duplicate would arrive now
    finally:
        second.stop()
        first.stop()
    received = Counter(r for m in smtp_sink.messages for r in m.rcpt_tos)
    assert received == Counter(addresses)


def test_mail_queued_while_workers_are_killed_twice_all_arrives_once(remote_mx, smtp_sink):
    """1,000 messages queued (by threads, in batches) in three waves while the worker is
    killed with SIGKILL and replaced, twice: each kill lands while the worker waits for a
    RCPT answer (of a given message well into the run), with the messages before it on the
    same connection already accepted by the sink, and the next wave is queued right after
    it, while no worker runs. Each recipient arrives exactly once: every outcome is
    recorded before the next transaction starts."""
    import threading

    from django.db import connections

    from apps.queue.services import enqueue_many

    addresses = [f"k{n}@remote.test" for n in range(1000)]
    waves = [range(0, 400), range(400, 700), range(700, 1000)]
    kill_in = ["k250@remote.test", "k550@remote.test"]  # the RCPT each kill lands in
    senders, batch = 4, 25

    def submit(numbers: range, first: int) -> None:
        try:
            mine = numbers[first::senders]
            for i in range(0, len(mine), batch):
                enqueue_many(
                    [
                        {
                            "return_path": "s@origin.test",
                            "recipients": [addresses[n]],
                            "data": data(n),
                        }
                        for n in mine[i : i + batch]
                    ]
                )
        finally:
            connections.close_all()

    def queue_wave(numbers: range) -> list[threading.Thread]:
        threads = [threading.Thread(target=submit, args=(numbers, i)) for i in range(senders)]
        for thread in threads:
            thread.start()
        return threads

    handler = smtp_sink.handler
    handler.slow_rcpts[kill_in[0]] = 5.0  # a slow peer: the kill lands before DATA
    workers = [Worker(remote_mx).start()]
    submitters = queue_wave(waves[0])
    try:
        for k, wave in enumerate(waves[1:]):
            slow = kill_in[k]
            wait_for(
                lambda slow=slow: slow in handler.rcpts_waiting,
                timeout=120,
                what=f"the RCPT of {slow}",
                worker=workers[-1],
            )
            workers[-1].kill()
            del handler.slow_rcpts[slow]
            if k + 1 < len(kill_in):  # before its wave is queued
                handler.slow_rcpts[kill_in[k + 1]] = 5.0
            assert delivered_count() < len(addresses)
            submitters += queue_wave(wave)  # queued while no worker runs
            workers.append(Worker(remote_mx, queue=workers[0].queue).start())
            time.sleep(2.5)  # the dead worker's lease lapses
            delivery.sweep(grace=timedelta(0))  # the beat's tick
        for thread in submitters:
            thread.join(120)
        delivery.sweep(grace=timedelta(0))
        wait_for(
            lambda: delivered_count() == len(addresses),
            timeout=180,
            what="every message delivered",
            worker=workers[-1],
        )
        time.sleep(1)  # a duplicate would arrive now
    finally:
        for worker in reversed(workers):
            worker.stop()
    received = Counter(r for m in smtp_sink.messages for r in m.rcpt_tos)
    assert received == Counter(addresses)
    assert not QueueDomain.objects.exclude(status="delivered").exists()
