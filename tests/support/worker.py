"""A real Celery worker process for tests, on a queue of its own, sharing the test database.

Everything the test process sends while a worker runs goes to that worker's queue, and so
does everything the worker sends itself (see worker_app). A second Worker started with
`queue=first.queue` takes over the queue of one that was killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connection

from mailadmin.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The URL of the test database this process is using, for a child process."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        name = str(s["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            raise RuntimeError("a worker process cannot share an in-memory SQLite database")
        return f"sqlite:///{name}"
    if s["ENGINE"].endswith("postgresql"):
        auth = s["USER"] or ""
        if s["PASSWORD"]:
            auth += f":{s['PASSWORD']}"
        host = s["HOST"] or "127.0.0.1"
        port = s["PORT"] or 5432
        return f"postgres://{auth}@{host}:{port}/{s['NAME']}"
    raise RuntimeError(f"no worker support for {s['ENGINE']}")


def _reset_router() -> None:
    """Celery builds its router once; make it read the routes we just set."""
    celery_app.amqp.flush_routes()
    celery_app.amqp.__dict__.pop("router", None)


class Worker:
    def __init__(
        self, extra_env: dict[str, str] | None = None, *, queue: str | None = None
    ) -> None:
        self.queue = queue or f"test-{uuid.uuid4().hex[:12]}"
        self.name = f"{self.queue}-{uuid.uuid4().hex[:6]}"
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        self.log_path = Path(settings.VAR_DIR) / f"{self.name}.log"
        self._saved: dict = {}

    def start(self) -> Worker:
        env = {**os.environ, **self.extra_env}
        env["DATABASE_URL"] = database_url()
        env["CELERY_BROKER_URL"] = celery_app.conf.broker_url
        env["MAILADMIN_TEST_WORKER_QUEUE"] = self.queue
        env.pop("CI", None)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.support.worker_app",
                "worker",
                "-Q",
                self.queue,
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "-n",
                f"{self.name}@%h",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        # Everything this test process sends goes to the worker's own queue.
        self._saved = {
            "task_default_queue": celery_app.conf.task_default_queue,
            "task_routes": celery_app.conf.task_routes,
        }
        celery_app.conf.task_default_queue = self.queue
        celery_app.conf.task_routes = {"*": {"queue": self.queue}}
        _reset_router()
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        """SIGKILL, as when a machine dies: no shutdown, no acknowledgement, no `finally`."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        for key, value in self._saved.items():
            setattr(celery_app.conf, key, value)
        _reset_router()
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()
        self.log_path.unlink(missing_ok=True)
