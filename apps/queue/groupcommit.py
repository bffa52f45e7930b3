"""Group commit: concurrent callers share one transaction and one durable commit.

Each caller hands in a request and blocks. Whoever finds fewer than `in_flight` commits
under way becomes a committer: it takes every request waiting, commits them with one call
of `commit_batch` (one transaction: one WAL flush for the lot), answers each, and steps
down; requests arriving while the commits are full wait for the next round, whose
committer is one of them. With `in_flight=1` every request waiting, or arriving while
the previous commit is in flight, shares the next commit; more let a group's statement
run while the previous group waits for its flush. No thread of its own: the committer is
a caller, on its own database connection, so it works wherever the callers run (the SMTP
listeners' database threads, a bench's threads) and holds no connection when nobody
enqueues.

When `commit_batch` fails, nothing of the batch was committed (one transaction); each
request is then committed alone with `commit_one`, so a request the database refuses
fails by itself and the others still go through. `after` (e.g. waking the workers) runs
in the committer's thread once every caller of its batch has been answered.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

R = TypeVar("R")  # a request
T = TypeVar("T")  # its result


class _Slot:
    __slots__ = ("request", "taken", "done", "result", "error")

    def __init__(self, request: Any) -> None:
        self.request = request
        self.taken = False  # in a batch being committed
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit(Generic[R, T]):
    def __init__(
        self,
        commit_batch: Callable[[list[R]], list[T]],
        commit_one: Callable[[R], T],
        *,
        after: Callable[[list[T]], None] | None = None,
        in_flight: int = 1,
        name: str = "group-commit",
    ) -> None:
        self._commit_batch = commit_batch
        self._commit_one = commit_one
        self._after = after
        self.name = name
        self._cond = threading.Condition()
        self._waiting: list[_Slot] = []
        self._in_flight = 0
        self.max_in_flight = in_flight
        # The sizes of the last batches committed (newest last): for tests and the bench.
        self.batches: deque[int] = deque(maxlen=10_000)

    def in_flight(self) -> int:
        """Commits under way."""
        with self._cond:
            return self._in_flight

    def waiting(self) -> int:
        """Requests waiting for the next commit (not counting the one in flight)."""
        with self._cond:
            return len(self._waiting)

    def submit(self, request: R) -> T:
        """Commit `request` with whatever else is waiting; its result once durable, or the
        error its commit raised."""
        slot = _Slot(request)
        led: list[_Slot] = []
        with self._cond:
            self._waiting.append(slot)
            while not slot.done:
                if slot.taken or self._in_flight >= self.max_in_flight:
                    self._cond.wait()
                    continue
                batch, self._waiting = self._waiting, []
                for taken in batch:
                    taken.taken = True
                led = batch
                self._in_flight += 1
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._in_flight -= 1
                    self._cond.notify_all()
        if led and self._after is not None:  # once the others are on their way
            try:
                self._after([s.result for s in led if s.error is None])
            except Exception:
                log.warning("%s: after the commit", self.name, exc_info=True)
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _run(self, batch: list[_Slot]) -> None:
        """Commit `batch`; every slot ends done, with a result or an error."""
        try:
            try:
                results = self._commit_batch([s.request for s in batch])
            except Exception:
                if len(batch) == 1:
                    raise
                log.warning(
                    "%s: a batch of %d failed; committing each alone",
                    self.name,
                    len(batch),
                    exc_info=True,
                )
                for slot in batch:
                    try:
                        slot.result = self._commit_one(slot.request)
                    except Exception as exc:
                        slot.error = exc
                    slot.done = True
                self.batches.extend([1] * len(batch))
                return
            for slot, result in zip(batch, results, strict=True):
                slot.result = result
                slot.done = True
            self.batches.append(len(batch))
        except BaseException as exc:
            for slot in batch:
                if not slot.done:
                    slot.error = exc
                    slot.done = True
            if not isinstance(exc, Exception):
                raise
