"""The one base for long work (DNS checks now; delivery, purges, reindexing, imports next).

A task that carries out a TaskRun is a body wrapped by `run_task`:

    @run_task(name="domains.dns_check", max_attempts=3)
    def domain_dns_check_task(run: RunContext, *, domain_id: int) -> Outcome:
        return services.domain_dns_check_run(actor=run.actor, domain_id=domain_id, progress=run)

The body does the work (through services) and returns an Outcome; the base does the rest:

- **claim**: the run moves pending → running by one conditional UPDATE; a duplicate or late
  message changes no row and does nothing.
- **lease + heartbeat**: the claim holds a lease that a heartbeat thread renews. A worker
  that dies stops renewing; `reap_runs` (Celery beat, every minute) then sends the run back
  to pending for another worker, or fails it with a clear message when its attempts are
  used up. Every write of a worker names its claim, so a replaced worker changes nothing.
- **retries**: a transient error (TransientError, a dropped database connection) sends the
  run back to pending with exponential backoff, up to `max_attempts` claims.
- **outcome in `finally`**: whatever the body did (returned, raised, was interrupted), the
  run ends recorded as success, failure or waiting for its retry.
- **the starter's audit context**: the body runs as interface "task" from the starter's
  address and gets the starter as `run.actor` (None for scheduled work), to pass to services.

    pending ──claim──► running ──outcome──► success | failure
       ▲                  │
       └─ retry / reaper ◄┘  (transient error; worker died and attempts are left)
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from mailadmin.audit import audit_context
from mailadmin.core.models import TaskRun
from mailadmin.core.progress import Outcome, task_run_send
from mailadmin.errors import ServiceError

logger = logging.getLogger(__name__)

RUNNING = TaskRun.State.RUNNING
PENDING = TaskRun.State.PENDING

# A pending run whose wake-up has not been taken this long after it was due is sent again
# (the broker only carries wake-ups; the database holds the work).
LOST_WAKEUP_AFTER = timedelta(minutes=10)
# Finished runs are kept this long for their pages, then deleted by the reaper.
KEEP_FINISHED = timedelta(days=30)
REAP_BATCH = 500


class TransientError(Exception):
    """Raised by a body for a failure worth trying again later (a peer that is down)."""


class RunLost(Exception):
    """This worker's claim is gone (the reaper gave the run to another): stop working."""


TRANSIENT: tuple[type[BaseException], ...] = (TransientError, OperationalError, InterfaceError)


def lease_duration() -> timedelta:
    return timedelta(seconds=settings.MAILADMIN_TASK_LEASE_SECONDS)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _describe(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:500]


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "never"


class RunContext:
    """What a body sees: the run's starter and arguments, and progress reporting that also
    renews the lease. Every write is fenced by the claim; a lost claim raises RunLost."""

    def __init__(
        self, run: TaskRun, *, claim_id: uuid.UUID, lease: timedelta, max_runtime: float
    ) -> None:
        self.id = str(run.pk)
        self.run = run
        self.actor = run.actor
        self.attempt = run.attempts
        self.max_attempts = run.max_attempts
        self.claim_id = claim_id
        self.lease = lease
        self.deadline = time.monotonic() + max_runtime
        self.lost = False

    def claimed_row(self):
        """The run, as long as this claim holds it (every write goes through this)."""
        return TaskRun.objects.filter(pk=self.id, state=RUNNING, claim_id=self.claim_id)

    def _write(self, **fields: Any) -> bool:
        now = timezone.now()
        if time.monotonic() < self.deadline:  # past its time limit a run lets its lease lapse
            fields.update(heartbeat_at=now, lease_expires_at=now + self.lease)
        changed = self.claimed_row().update(updated_at=now, **fields)
        if not changed:
            self.lost = True
        return bool(changed)

    def renew(self) -> bool:
        """Extend the lease; False once the claim is gone."""
        return not self.lost and self._write()

    @property
    def overdue(self) -> bool:
        return time.monotonic() >= self.deadline

    def begin(self, total: int) -> None:
        if self.lost or not self._write(total=total, done=0):
            raise RunLost(self.id)

    def step(self, done: int, message: str) -> None:
        if self.lost or not self._write(done=done, message=message[:1024]):
            raise RunLost(self.id)


class _Heartbeat:
    """Renews the lease from a thread of its own while the body works, until the task's
    `max_runtime`: a run past that (stuck, or just too slow) lets its lease lapse, even
    while it reports progress, and the reaper takes it back.

    Inside a transaction (a test calling a task inline) another connection would not see
    the claimed row, so there the lease is renewed by progress reports alone."""

    def __init__(self, context: RunContext) -> None:
        self.context = context
        self.interval = max(context.lease.total_seconds() / 4, 0.1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> _Heartbeat:
        if not connection.in_atomic_block:
            self._thread = threading.Thread(
                target=self._beat, name=f"heartbeat-{self.context.id}", daemon=True
            )
            self._thread.start()
        return self

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                if self.context.overdue:
                    logger.warning(
                        "run %s passed its time limit; its lease will lapse", self.context.id
                    )
                    return
                try:
                    if not self.context.renew():
                        logger.warning(
                            "run %s: claim lost, the body stops at its next step", self.context.id
                        )
                        return
                except DatabaseError:  # the lease may lapse; the reaper then decides
                    logger.warning("run %s: heartbeat failed", self.context.id, exc_info=True)
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


@dataclass(frozen=True)
class RunSpec:
    """How a task's runs are carried out; see run_task."""

    name: str
    max_attempts: int
    retry_backoff: float
    retry_backoff_max: float
    max_runtime: float
    transient: tuple[type[BaseException], ...]

    def backoff(self, attempt: int) -> float:
        """Seconds before retrying after `attempt` failed: doubling, capped, 10% jitter."""
        delay = min(self.retry_backoff * 2 ** (attempt - 1), self.retry_backoff_max)
        return delay + random.uniform(0, delay / 10)  # noqa: S311 - spreading, not secrecy


def run_task(
    *,
    name: str,
    max_attempts: int = 1,
    retry_backoff: float = 10.0,
    retry_backoff_max: float = 600.0,
    max_runtime: float = 3600.0,
    transient: tuple[type[BaseException], ...] = TRANSIENT,
) -> Callable[[Callable[..., Outcome]], Any]:
    """Make `body(run, **arguments) -> Outcome` the Celery task `name` that carries out runs.

    `max_attempts` counts claims: transient errors and dead workers use them up. Only make
    it more than 1 for work that is safe to repeat from the start.
    """
    spec = RunSpec(name, max_attempts, retry_backoff, retry_backoff_max, max_runtime, transient)

    def decorator(body: Callable[..., Outcome]):
        # Older messages carried more arguments; the run row holds them now, so extra
        # positional arguments are ignored.
        @shared_task(name=name, ignore_result=True, acks_late=True)
        def task(run_id: str | None = None, *_ignored: object) -> None:
            if run_id is None:
                logger.warning("%s: a message without a run id, ignored", name)
                return
            execute(spec, body, run_id)

        task.run_spec = spec
        task.__doc__ = body.__doc__
        return task

    return decorator


def _claim(spec: RunSpec, run_id: str) -> RunContext | None:
    """pending → running by one conditional UPDATE; None when someone else has it."""
    claim_id = uuid.uuid4()
    now = timezone.now()
    lease = lease_duration()
    claimed = TaskRun.objects.filter(pk=run_id, state=PENDING).update(
        state=RUNNING,
        attempts=F("attempts") + 1,
        max_attempts=spec.max_attempts,
        claim_id=claim_id,
        worker=_worker_name()[:255],
        heartbeat_at=now,
        lease_expires_at=now + lease,
        done=0,
        message="",
        updated_at=now,
    )
    if not claimed:
        return None
    run = TaskRun.objects.select_related("actor").get(pk=run_id)
    return RunContext(run, claim_id=claim_id, lease=lease, max_runtime=spec.max_runtime)


def _starter_problem(run: TaskRun) -> str | None:
    """A run started by a person acts as them: not once they are deleted or disabled."""
    if run.actor_name and run.actor is None:
        return f"{run.actor_name}, who started this, no longer exists."
    if run.actor is not None and not run.actor.is_active:
        return f"{run.actor_name or run.actor.name}, who started this, is disabled."
    return None


def execute(spec: RunSpec, body: Callable[..., Outcome], run_id: str) -> None:
    """Claim the run, run the body in the starter's audit context, record the outcome."""
    context = _claim(spec, run_id)
    if context is None:
        logger.info("%s: run %s is not pending (taken, finished or gone)", spec.name, run_id)
        return
    heartbeat = _Heartbeat(context).start()
    outcome: Outcome | None = None
    retry: BaseException | None = None
    try:
        problem = _starter_problem(context.run)
        if problem:
            outcome = Outcome(False, problem)
        else:
            with audit_context("task", context.run.actor_ip):
                outcome = body(context, **context.run.arguments)
            if not isinstance(outcome, Outcome):
                raise TypeError(f"{spec.name} returned {outcome!r}, not an Outcome")
    except RunLost:
        logger.warning("%s: run %s was taken from this worker", spec.name, run_id)
    except spec.transient as exc:
        logger.warning(
            "%s: run %s attempt %s failed", spec.name, run_id, context.attempt, exc_info=True
        )
        if context.attempt < context.max_attempts:
            retry = exc
        else:
            outcome = Outcome(False, f"Gave up after {context.attempt} attempts: {_describe(exc)}")
    except ServiceError as exc:  # a refusal meant for a person (gone, not allowed, ...)
        outcome = Outcome(False, exc.message)
    except Exception as exc:
        logger.exception("%s: run %s failed", spec.name, run_id)
        outcome = Outcome(False, f"Failed: {_describe(exc)}")
    finally:
        heartbeat.stop()
        if context.lost:
            logger.info("%s: run %s belongs to another worker now", spec.name, run_id)
        elif retry is not None:
            _retry(spec, context, retry)
        elif outcome is not None:
            _finish(context, outcome)
        else:  # interrupted (worker shutdown): hand the run back, or end it
            _interrupted(spec, context)


def _finish(context: RunContext, outcome: Outcome) -> None:
    now = timezone.now()
    state = TaskRun.State.SUCCESS if outcome.ok else TaskRun.State.FAILURE
    recorded = context.claimed_row().update(
        state=state,
        message=outcome.message[:1024],
        result=outcome.result,
        finished_at=now,
        lease_expires_at=None,
        updated_at=now,
    )
    if not recorded:
        logger.warning("run %s: outcome not recorded, the claim was lost", context.id)


def _retry(spec: RunSpec, context: RunContext, exc: BaseException) -> None:
    delay = spec.backoff(context.attempt)
    now = timezone.now()
    released = context.claimed_row().update(
        state=PENDING,
        claim_id=None,
        worker="",
        lease_expires_at=None,
        available_at=now + timedelta(seconds=delay),
        message=(
            f"Attempt {context.attempt} of {context.max_attempts} failed: {_describe(exc)}. "
            f"Trying again in {delay:.0f} s."
        )[:1024],
        updated_at=now,
    )
    if released:
        transaction.on_commit(lambda: task_run_send(context.run, countdown=delay))


def _interrupted(spec: RunSpec, context: RunContext) -> None:
    if context.attempt < context.max_attempts:
        _retry(spec, context, RuntimeError("the worker was interrupted"))
    else:
        _finish(context, Outcome(False, "The worker was interrupted before this finished."))


# --- the reaper ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reaped:
    requeued: int = 0
    failed: int = 0
    resent: int = 0
    pruned: int = 0


def reap_runs(*, now: datetime | None = None) -> Reaped:
    """Recover runs whose worker died, resend lost wake-ups, delete old finished runs.

    A running run whose lease expired goes back to pending (and a worker is woken) while
    it has attempts left, else it fails saying so. Each change is a conditional UPDATE on
    the claim it saw, so a worker that renews at the last moment keeps its run.
    """
    now = now or timezone.now()
    requeued = failed = resent = 0
    expired = TaskRun.objects.filter(state=RUNNING, lease_expires_at__lt=now).order_by(
        "lease_expires_at"
    )[:REAP_BATCH]
    for run in expired:
        same_claim = TaskRun.objects.filter(
            pk=run.pk, state=RUNNING, claim_id=run.claim_id, lease_expires_at__lt=now
        )
        silent = f"stopped answering (last heartbeat {_when(run.heartbeat_at)})"
        if run.attempts < run.max_attempts and run.task_name:
            if same_claim.update(
                state=PENDING,
                claim_id=None,
                worker="",
                lease_expires_at=None,
                available_at=now,
                message=(
                    f"The worker of attempt {run.attempts} of {run.max_attempts} {silent}; "
                    "trying again."
                ),
                updated_at=now,
            ):
                transaction.on_commit(lambda run=run: task_run_send(run))
                requeued += 1
        elif same_claim.update(
            state=TaskRun.State.FAILURE,
            message=(
                f"The worker running this {silent}; gave up after "
                f"{run.attempts} of {run.max_attempts} attempts."
            ),
            finished_at=now,
            lease_expires_at=None,
            updated_at=now,
        ):
            failed += 1
        logger.warning("run %s (%s): worker %s %s", run.pk, run.kind, run.worker, silent)

    lost = TaskRun.objects.filter(state=PENDING, available_at__lt=now - LOST_WAKEUP_AFTER)
    for run in lost.order_by("available_at")[:REAP_BATCH]:
        same = TaskRun.objects.filter(pk=run.pk, state=PENDING, available_at=run.available_at)
        if not run.task_name:
            failed += same.update(
                state=TaskRun.State.FAILURE,
                message="No task carries out this run (it was started by an older version).",
                finished_at=now,
                updated_at=now,
            )
        elif same.update(available_at=now, updated_at=now):
            transaction.on_commit(lambda run=run: task_run_send(run))
            resent += 1

    old = TaskRun.objects.filter(finished_at__lt=now - KEEP_FINISHED).order_by("finished_at")
    old_ids = list(old.values_list("pk", flat=True)[: REAP_BATCH * 10])
    pruned = TaskRun.objects.filter(pk__in=old_ids).delete()[0] if old_ids else 0
    return Reaped(requeued=requeued, failed=failed, resent=resent, pruned=pruned)
