"""Group commit of enqueues on PostgreSQL (one statement for a whole group): several
messages of several domains and recipients each land as `enqueue` would write them, and
a message the database refuses fails alone while the rest of its group is queued."""

from __future__ import annotations

import time

import pytest

from apps.queue import delivery, services
from apps.queue.models import QueuedMessage, QueueDomain, QueueRecipient
from mailadmin.errors import ValidationFailed
from tests.unit.queue.conftest import queue_writes_held
from tests.unit.queue.test_group_commit import Enqueue, grouped, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_wake_ups_one_commit_in_flight(monkeypatch):
    monkeypatch.setattr(delivery, "wake", lambda domain_id: None)
    monkeypatch.setattr(services._group, "max_in_flight", 1)


def test_a_group_is_written_in_one_statement_as_enqueue_writes_each_message():
    services._group.batches.clear()
    with queue_writes_held():
        first = Enqueue(**grouped(0))
        wait_for(lambda: services._group.in_flight())
        calls = [
            Enqueue(**grouped(1, ["a@one.test", "b@two.test", "c@one.test"])),
            Enqueue(**grouped(2, ["d@two.test"]), tenant_id=None),
            Enqueue(return_path="", recipients=["e@three.test", "E@three.test"], data=b"x"),
        ]
        wait_for(lambda: services._group.waiting() == 3)
        time.sleep(0.2)
        assert not any(c.done.is_set() for c in [first, *calls])
    for call in [first, *calls]:
        assert call.done.wait(10) and call.error is None, call.error
    assert list(services._group.batches) == [1, 3]
    one = calls[0].result
    assert QueuedMessage.objects.get(pk=one.pk).domain_count == 2
    rows = QueueRecipient.objects.filter(message=one).order_by("address")
    assert [(r.address, r.domain.name, r.status) for r in rows] == [
        ("a@one.test", "one.test", "scheduled"),
        ("b@two.test", "two.test", "scheduled"),
        ("c@one.test", "one.test", "scheduled"),
    ]
    domain = QueueDomain.objects.get(message=one, name="one.test")
    assert domain.next_notify is not None and domain.expires > domain.next_retry
    bounce = QueueDomain.objects.get(message=calls[2].result)
    assert bounce.next_notify is None  # no delay notice for a null sender
    assert list(bounce.recipients.values_list("address", flat=True)) == ["e@three.test"]


def test_a_message_the_database_refuses_fails_alone_and_its_group_is_queued():
    services._group.batches.clear()
    with queue_writes_held():
        first = Enqueue(**grouped(0))
        wait_for(lambda: services._group.in_flight())
        good = [Enqueue(**grouped(1)), Enqueue(**grouped(2))]
        too_long = Enqueue(**{**grouped(3), "return_path": "x" * 400 + "@origin.test"})
        wait_for(lambda: services._group.waiting() == 3)
    for call in [first, *good, too_long]:
        assert call.done.wait(10)
    assert first.error is None and [c.error for c in good] == [None, None]
    assert too_long.error is not None and not isinstance(too_long.error, ValidationFailed)
    assert sorted(QueuedMessage.objects.values_list("subject", flat=True)) == [
        "grouped 0",
        "grouped 1",
        "grouped 2",
    ]
    assert QueueRecipient.objects.count() == 3
