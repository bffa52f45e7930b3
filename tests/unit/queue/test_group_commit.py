"""Group commit of enqueues: concurrent callers share one transaction; each is answered
only once its message is durable, and one refused message never takes the others down."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from apps.queue import services
from apps.queue.groupcommit import GroupCommit
from apps.queue.models import QueuedMessage, QueueRecipient
from apps.store import blobs
from mailadmin.errors import ValidationFailed
from tests.unit.queue.conftest import message, queue_writes_held


def wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class Calls:
    """A real threaded caller of a GroupCommit: its outcome, once it has one."""

    def __init__(self, group: GroupCommit, request) -> None:
        self.result = self.error = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(group, request))
        self.thread.start()

    def _run(self, group, request) -> None:
        try:
            self.result = group.submit(request)
        except Exception as exc:
            self.error = exc
        finally:
            connections.close_all()
            self.done.set()


# --- the mechanism, with a commit of the test's own ---------------------------------------


def test_it_commits_every_request_waiting_behind_the_commit_in_flight_as_one_batch():
    gate = threading.Event()
    batches: list[list[int]] = []

    def commit_batch(batch: list[int]) -> list[int]:
        batches.append(list(batch))
        if batch == [0]:
            gate.wait(10)  # the first commit stays in flight
        return [n * 10 for n in batch]

    group = GroupCommit(commit_batch, lambda n: n * 10)
    first = Calls(group, 0)
    wait_for(lambda: batches == [[0]])
    others = [Calls(group, n) for n in range(1, 6)]
    wait_for(lambda: group.waiting() == 5)
    assert not first.done.is_set()
    gate.set()
    for call in [first, *others]:
        assert call.done.wait(10)
    assert batches[0] == [0] and sorted(batches[1]) == [1, 2, 3, 4, 5]
    assert len(batches) == 2 and list(group.batches) == [1, 5]
    assert [c.result for c in [first, *others]] == [0, 10, 20, 30, 40, 50]


def test_with_two_commits_in_flight_the_requests_behind_them_share_the_next():
    gate = threading.Event()
    batches: list[list[int]] = []

    def commit_batch(batch: list[int]) -> list[int]:
        batches.append(list(batch))
        if batch in ([0], [1]):
            gate.wait(10)
        return batch

    group = GroupCommit(commit_batch, lambda n: n, in_flight=2)
    first = Calls(group, 0)
    wait_for(lambda: group.in_flight() == 1)
    second = Calls(group, 1)
    wait_for(lambda: group.in_flight() == 2)
    others = [Calls(group, n) for n in range(2, 6)]
    wait_for(lambda: group.waiting() == 4)
    gate.set()
    for call in [first, second, *others]:
        assert call.done.wait(10)
    assert batches[:2] == [[0], [1]] and sorted(batches[2]) == [2, 3, 4, 5]
    assert len(batches) == 3
    assert [c.result for c in [first, second, *others]] == [0, 1, 2, 3, 4, 5]


def test_a_batch_that_fails_is_committed_one_by_one_so_only_the_bad_request_fails():
    gate, entered = threading.Event(), threading.Event()
    singles: list[int] = []

    def commit_batch(batch: list[int]) -> list[int]:
        if batch == [0]:
            entered.set()
            gate.wait(10)
            return [0]
        if 3 in batch:
            raise RuntimeError("the database refused the batch")
        return batch

    def commit_one(n: int) -> int:
        singles.append(n)
        if n == 3:
            raise ValueError("request 3 is bad")
        return n

    group = GroupCommit(commit_batch, commit_one)
    first = Calls(group, 0)
    assert entered.wait(10)
    others = [Calls(group, n) for n in (1, 2, 3, 4)]
    wait_for(lambda: group.waiting() == 4)
    gate.set()
    for call in [first, *others]:
        assert call.done.wait(10)
    assert sorted(singles) == [1, 2, 3, 4]
    assert [c.result for c in others] == [1, 2, None, 4]
    assert [type(c.error) for c in others] == [type(None), type(None), ValueError, type(None)]
    assert str(others[2].error) == "request 3 is bad"


# --- enqueue_grouped over the real database --------------------------------------------

pytestmark_db = pytest.mark.django_db(transaction=True)


def grouped(n: int, recipients: list[str] | None = None) -> dict:
    return {
        "return_path": "sender@origin.test",
        "recipients": recipients or [f"r{n}@remote.test"],
        "data": message(subject=f"grouped {n}"),
    }


class Enqueue(Calls):
    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs
        super().__init__(services._group, None)

    def _run(self, group, request) -> None:
        try:
            self.result = services.enqueue_grouped(**self.kwargs)
        except Exception as exc:
            self.error = exc
        finally:
            connections.close_all()
            self.done.set()


@pytest.fixture
def one_commit_in_flight(monkeypatch):
    monkeypatch.setattr(services._group, "max_in_flight", 1)
    services._group.batches.clear()


@pytestmark_db
def test_concurrent_enqueues_share_one_commit_and_return_only_once_committed(
    one_commit_in_flight,
):
    with queue_writes_held():
        first = Enqueue(**grouped(0))
        # the first caller commits alone; its commit waits behind the held writes
        wait_for(lambda: services._group.in_flight())
        others = [Enqueue(**grouped(n)) for n in range(1, 6)]
        wait_for(lambda: services._group.waiting() == 5)
        time.sleep(0.2)
        assert not any(c.done.is_set() for c in [first, *others])  # nobody answered yet
        # every blob is on disk before the rows that name it are committed
        for n in range(6):
            assert blobs.exists(blobs.hash_of(grouped(n)["data"]))
        assert QueuedMessage.objects.count() == 0
    for call in [first, *others]:
        assert call.done.wait(10) and call.error is None
    assert list(services._group.batches) == [1, 5]
    subjects = sorted(QueuedMessage.objects.values_list("subject", flat=True))
    assert subjects == [f"grouped {n}" for n in range(6)]
    assert sorted(QueueRecipient.objects.values_list("address", flat=True)) == [
        f"r{n}@remote.test" for n in range(6)
    ]
    for call in [first, *others]:
        assert call.result.pk is not None
        assert blobs.read(call.result.blob_hash).endswith(b"Hi there.\r\n")
        assert call.result.recipients.get().domain.name == "remote.test"


@pytestmark_db
def test_a_message_that_fails_its_checks_is_refused_alone_and_the_others_are_queued(
    one_commit_in_flight,
):
    with queue_writes_held():
        first = Enqueue(**grouped(0))
        wait_for(lambda: services._group.in_flight())
        good = [Enqueue(**grouped(n)) for n in (1, 2)]
        bad = Enqueue(**grouped(3, recipients=["not-an-address"]))
        assert bad.done.wait(10)  # refused at once, without waiting for any commit
        wait_for(lambda: services._group.waiting() == 2)
    for call in [first, *good]:
        assert call.done.wait(10) and call.error is None
    assert isinstance(bad.error, ValidationFailed)
    assert bad.error.message == "Not an address: 'not-an-address'"
    assert sorted(QueuedMessage.objects.values_list("subject", flat=True)) == [
        "grouped 0",
        "grouped 1",
        "grouped 2",
    ]
