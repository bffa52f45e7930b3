"""Threads that run the listeners' database work off the event loop.

The ORM is synchronous and keeps one connection per thread. A fixed set of threads keeps
its connections open between jobs (no connect per SMTP command), drops a connection
after a database error, and closes every connection when the pool stops, so a test
database can be dropped after the listeners end.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connections

T = TypeVar("T")


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the client went away while the job ran
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class DbPool:
    def __init__(self, size: int, *, name: str = "smtp-db") -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(max(1, size))
        ]
        for thread in self._threads:
            thread.start()

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._jobs.put((loop, future, fn, args, kwargs))
        return await future

    def _work(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                loop, future, fn, args, kwargs = job
                result, error = None, None
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # handed to the awaiting coroutine
                    error = exc
                finally:
                    for connection in connections.all(initialized_only=True):
                        if connection.errors_occurred:
                            connection.close_if_unusable_or_obsolete()
                with contextlib.suppress(RuntimeError):  # a closed loop: the listener is gone
                    loop.call_soon_threadsafe(_settle, future, result, error)
        finally:
            connections.close_all()

    def stop(self, timeout: float = 10) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=timeout)
