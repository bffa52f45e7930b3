"""The Celery app of a test worker process: mailadmin's app, with everything the worker itself
sends (retries, the reaper's re-queues, the schedule's fan-out) routed to its own queue, so
it never lands on a queue no test worker reads."""

from __future__ import annotations

import os

from mailadmin.celery import app

queue = os.environ["MAILADMIN_TEST_WORKER_QUEUE"]
app.conf.task_default_queue = queue
app.conf.task_routes = {"*": {"queue": queue}}

__all__ = ["app"]
