"""The same real-worker checks as tests/integration/test_queue_delivery.py, on the embedded
default the README's first command runs: SQLite and the serverless broker (whatever
DATABASE_URL and REDIS_URL say, these run on the configured database and broker)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.queue import delivery
from apps.queue.models import QueueDomain, QueueRecipient
from apps.queue.services import enqueue, queue_start, queue_stop
from tests.integration.test_task_recovery import wait_for
from tests.support.worker import Worker
from tests.unit.queue.conftest import message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker_env(mx, dns_server, settings):
    return {
        "MAILADMIN_DNS_NAMESERVERS": dns_server.address,
        "MAILADMIN_SMTP_REMOTE_PORT": str(mx.port),
        "MAILADMIN_QUEUE_LEASE_SECONDS": "2",
        "MAILADMIN_BLOB_DIR": str(settings.MAILADMIN_BLOB_DIR),
    }


def delivered() -> int:
    return QueueRecipient.objects.filter(status="delivered").count()


def test_a_real_worker_honours_stop_and_start(worker_env, mx, superadmin):
    worker = Worker(worker_env).start()
    try:
        queue_stop(actor=superadmin)
        queued = enqueue(return_path="s@origin.test", recipients=["a@remote.test"], data=message())
        wait_for(lambda: "succeeded" in worker.log(), timeout=30, what="the wake-up", worker=worker)
        assert mx.messages == []
        queue_start(actor=superadmin)
        assert mx.wait_for(1, timeout=30)[0].rcpt_tos == ["a@remote.test"]
    finally:
        worker.stop()
    assert QueueDomain.objects.get(message=queued).status == "delivered"


def test_a_killed_worker_loses_and_duplicates_nothing(worker_env, mx):
    mx.handler.rcpt_delay = 0.05
    first = Worker(worker_env).start()
    second = None
    try:
        addresses = []
        for n in range(10):
            to = [f"r{n}a@remote.test", f"r{n}b@remote.test"]
            addresses += to
            enqueue(return_path="s@origin.test", recipients=to, data=message(f"m{n}"))
        wait_for(lambda: delivered() >= 4, timeout=60, what="some deliveries", worker=first)
        mx.handler.in_rcpt.clear()
        assert mx.handler.in_rcpt.wait(10)
        first.kill()
        assert delivered() < len(addresses)
        wait_for(
            lambda: not QueueDomain.objects.filter(lease_expires_at__gt=timezone.now()).exists(),
            timeout=10,
            what="the lease to lapse",
        )
        second = Worker(worker_env, queue=first.queue).start()
        delivery.sweep(grace=timedelta(0))
        wait_for(lambda: delivered() == len(addresses), timeout=60, what="the rest", worker=second)
    finally:
        if second is not None:
            second.stop()
        first.stop()
    assert Counter(r for m in mx.messages for r in m.rcpt_tos) == Counter(addresses)
