"""The task base: claim, lease and heartbeat, fencing, retries, the reaper, the starter's
audit context. Bodies here are small tasks defined for the test; the real tasks (DNS check,
self-check) are tested in their apps and, with a worker killed mid-run, in integration."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from mailadmin.audit import audit, audit_context
from mailadmin.core.models import AuditEvent, TaskRun
from mailadmin.core.progress import Outcome, task_run_start
from mailadmin.core.taskbase import (
    KEEP_FINISHED,
    LOST_WAKEUP_AFTER,
    Reaped,
    RunContext,
    RunSpec,
    TransientError,
    reap_runs,
    run_task,
)
from mailadmin.errors import NotFound

pytestmark = pytest.mark.django_db

# What the test task's body does next: set by each test.
behaviour: dict[str, Callable[[RunContext], Outcome]] = {}


@run_task(name="tests.taskbase.probe", max_attempts=3, retry_backoff=10, retry_backoff_max=25)
def probe_task(run: RunContext, **arguments) -> Outcome:
    return behaviour["body"](run, **arguments)


@run_task(name="tests.taskbase.once")
def once_task(run: RunContext) -> Outcome:
    return behaviour["body"](run)


@pytest.fixture(autouse=True)
def _clean_behaviour():
    behaviour.clear()
    yield
    behaviour.clear()


@pytest.fixture
def start(admin_a, django_capture_on_commit_callbacks):
    """start(task_name=..., actor=..., **arguments) -> a pending run; its wake-up not sent."""

    def make(*, task_name: str = "tests.taskbase.probe", actor=admin_a, kind="probe", **arguments):
        with django_capture_on_commit_callbacks(execute=False):
            return task_run_start(
                actor=actor,
                kind=kind,
                title="Probe",
                task_name=task_name,
                tenant_id=getattr(actor, "tenant_id", None),
                arguments=arguments,
            )

    return make


def _reload(run: TaskRun) -> TaskRun:
    run.refresh_from_db()
    return run


# --- claim, outcome ------------------------------------------------------------------------


def test_it_claims_runs_the_body_and_records_its_outcome(start):
    seen = {}

    def body(run, *, n):
        seen["n"] = n
        seen["state"] = TaskRun.objects.get(pk=run.id).state
        run.begin(2)
        run.step(1, "first")
        run.step(2, "second")
        return Outcome(True, "Both done.", {"rows": [1, 2]})

    behaviour["body"] = body
    run = start(n=7)
    probe_task(str(run.id))
    run = _reload(run)
    assert seen == {"n": 7, "state": "running"}
    assert (run.state, run.message, run.result) == ("success", "Both done.", {"rows": [1, 2]})
    assert (run.done, run.total, run.attempts, run.max_attempts) == (2, 2, 1, 3)
    assert run.finished_at is not None and run.lease_expires_at is None
    assert run.worker  # host:pid of the claim


def test_it_runs_a_claimed_run_only_once(start):
    calls = []
    behaviour["body"] = lambda run: calls.append(run.id) or Outcome(True, "ok")
    run = start()
    probe_task(str(run.id))
    probe_task(str(run.id))  # a redelivered message
    assert len(calls) == 1
    assert _reload(run).attempts == 1


def test_it_ignores_a_message_for_a_run_that_is_gone():
    behaviour["body"] = lambda run: pytest.fail("no run, no body")
    probe_task("00000000-0000-0000-0000-000000000000")
    probe_task(None, 42)  # an old-style scheduled message


def test_it_records_a_refusal_as_the_failure_message(start):
    def body(run):
        raise NotFound("The domain no longer exists.")

    behaviour["body"] = body
    run = start()
    probe_task(str(run.id))
    run = _reload(run)
    assert (run.state, run.message) == ("failure", "The domain no longer exists.")


def test_it_records_a_crash_as_a_failure_in_finally(start):
    def body(run):
        run.begin(3)
        raise ValueError("boom")

    behaviour["body"] = body
    run = start()
    probe_task(str(run.id))
    run = _reload(run)
    assert (run.state, run.message, run.total) == ("failure", "Failed: boom", 3)
    assert run.finished_at is not None


def test_it_fails_a_body_that_returns_no_outcome(start):
    behaviour["body"] = lambda run: None
    run = start()
    probe_task(str(run.id))
    run = _reload(run)
    assert (run.state, run.message) == (
        "failure",
        "Failed: tests.taskbase.probe returned None, not an Outcome",
    )


def test_it_hands_an_interrupted_run_back_in_finally(start, django_capture_on_commit_callbacks):
    def body(run):
        raise KeyboardInterrupt

    behaviour["body"] = body
    run = start()
    with pytest.raises(KeyboardInterrupt), django_capture_on_commit_callbacks() as sent:
        probe_task(str(run.id))
    run = _reload(run)
    assert run.state == "pending"
    assert run.message.startswith("Attempt 1 of 3 failed: the worker was interrupted.")
    assert len(sent) == 1


# --- retries -----------------------------------------------------------------------------


def test_it_retries_a_transient_error_with_backoff(start, django_capture_on_commit_callbacks):
    def body(run):
        raise TransientError("the DNS server is down")

    behaviour["body"] = body
    run = start()
    before = timezone.now()
    with django_capture_on_commit_callbacks() as sent:
        probe_task(str(run.id))
    run = _reload(run)
    assert run.state == "pending"
    assert run.attempts == 1 and run.claim_id is None and run.lease_expires_at is None
    assert run.message.startswith("Attempt 1 of 3 failed: the DNS server is down. Trying again")
    assert (
        before + timedelta(seconds=10) <= run.available_at <= timezone.now() + timedelta(seconds=11)
    )
    assert len(sent) == 1  # the wake-up, with the backoff as its countdown


def test_it_gives_up_after_the_last_attempt(start):
    def body(run):
        raise TransientError("the DNS server is down")

    behaviour["body"] = body
    run = start()
    for _ in range(3):
        probe_task(str(run.id))
    run = _reload(run)
    assert (run.state, run.attempts) == ("failure", 3)
    assert run.message == "Gave up after 3 attempts: the DNS server is down"


def test_it_doubles_the_backoff_up_to_its_cap():
    spec = RunSpec("x", 5, 10, 25, 60, (TransientError,))
    for attempt, base in ((1, 10), (2, 20), (3, 25), (4, 25)):
        assert base <= spec.backoff(attempt) <= base * 1.1


# --- the starter -----------------------------------------------------------------------


def test_it_acts_in_the_starters_audit_context(start, admin_a):
    def body(run):
        audit(actor=run.actor, action="probe.touch", object_type="probe", object_id=run.id)
        return Outcome(True, "touched")

    behaviour["body"] = body
    with audit_context("html", "192.0.2.7"):
        run = start()
    assert (run.actor_name, run.actor_ip) == ("admin-a", "192.0.2.7")
    probe_task(str(run.id))
    event = AuditEvent.objects.get(action="probe.touch")
    assert (event.actor, event.actor_name, event.interface, event.ip) == (
        admin_a,
        "admin-a",
        "task",
        "192.0.2.7",
    )
    assert event.tenant_id == admin_a.tenant_id


def test_it_runs_scheduled_work_as_the_system(start):
    def body(run):
        audit(actor=run.actor, action="probe.touch", object_type="probe")
        return Outcome(True, "touched")

    behaviour["body"] = body
    run = start(actor=None)
    probe_task(str(run.id))
    event = AuditEvent.objects.get(action="probe.touch")
    assert (event.actor_name, event.interface, event.ip) == ("system", "task", None)


def test_it_fails_a_run_whose_starter_was_deleted_or_disabled(start, admin_a, user_a):
    behaviour["body"] = lambda run: pytest.fail("the body must not run for them")
    gone = start(kind="a")
    admin_a.delete()
    probe_task(str(gone.id))
    assert _reload(gone).message == "admin-a, who started this, no longer exists."
    disabled = start(actor=user_a, kind="b")
    user_a.is_active = False
    user_a.save()
    probe_task(str(disabled.id))
    assert (_reload(disabled).state, disabled.message) == (
        "failure",
        "user-a, who started this, is disabled.",
    )


# --- one unfinished run per kind ------------------------------------------------------------


def test_it_returns_the_run_under_way_instead_of_a_twin(
    admin_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as sent:
        first = task_run_start(
            actor=admin_a, kind="k", title="K", task_name="t", tenant_id=admin_a.tenant_id
        )
        second = task_run_start(
            actor=admin_a, kind="k", title="K", task_name="t", tenant_id=admin_a.tenant_id
        )
    assert first.pk == second.pk
    assert len(sent) == 1
    TaskRun.objects.filter(pk=first.pk).update(state="success")
    third = task_run_start(
        actor=admin_a, kind="k", title="K", task_name="t", tenant_id=admin_a.tenant_id
    )
    assert third.pk != first.pk


# --- fencing -----------------------------------------------------------------------------


def test_it_stops_a_worker_whose_run_was_taken_over(start):
    def body(run):
        run.begin(2)
        # Meanwhile the reaper gave the run to another worker, which claimed it.
        TaskRun.objects.filter(pk=run.id).update(claim_id="11111111-1111-1111-1111-111111111111")
        run.step(1, "too late")
        pytest.fail("step() must raise once the claim is gone")

    behaviour["body"] = body
    run = start()
    probe_task(str(run.id))
    run = _reload(run)
    assert run.state == "running"  # untouched: the new claim owns it
    assert run.message == ""


# --- the reaper ---------------------------------------------------------------------------


def _running(start, *, attempts: int, expired_ago: float, task_name="tests.taskbase.probe"):
    run = start(task_name=task_name)
    now = timezone.now()
    TaskRun.objects.filter(pk=run.pk).update(
        state="running",
        attempts=attempts,
        max_attempts=3,
        claim_id="22222222-2222-2222-2222-222222222222",
        worker="gone-host:4242",
        heartbeat_at=now - timedelta(seconds=expired_ago + 60),
        lease_expires_at=now - timedelta(seconds=expired_ago),
    )
    return _reload(run)


def test_it_requeues_a_run_whose_worker_died(start, django_capture_on_commit_callbacks):
    run = _running(start, attempts=1, expired_ago=5)
    with django_capture_on_commit_callbacks() as sent:
        reaped = reap_runs()
    assert (reaped.requeued, reaped.failed) == (1, 0)
    assert len(sent) == 1
    run = _reload(run)
    assert (run.state, run.claim_id, run.worker, run.lease_expires_at) == (
        "pending",
        None,
        "",
        None,
    )
    assert run.message.startswith("The worker of attempt 1 of 3 stopped answering (last heartbeat ")
    assert run.message.endswith(" UTC); trying again.")
    # ... and the next worker takes it from there
    behaviour["body"] = lambda ctx: Outcome(True, "recovered")
    probe_task(str(run.id))
    assert (_reload(run).state, run.attempts, run.message) == ("success", 2, "recovered")


def test_it_fails_a_dead_run_with_no_attempts_left(start, django_capture_on_commit_callbacks):
    run = _running(start, attempts=3, expired_ago=5)
    with django_capture_on_commit_callbacks() as sent:
        assert reap_runs().failed == 1
    assert sent == []
    run = _reload(run)
    assert run.state == "failure" and run.finished_at is not None
    assert run.message.startswith("The worker running this stopped answering (last heartbeat ")
    assert run.message.endswith(" UTC); gave up after 3 of 3 attempts.")


def test_it_leaves_a_run_with_a_live_lease_alone(start):
    run = _running(start, attempts=1, expired_ago=-30)  # expires in 30 s
    assert reap_runs() == Reaped()
    assert _reload(run).state == "running"


def test_it_resends_a_lost_wakeup_and_ends_a_run_no_task_carries(
    start, django_capture_on_commit_callbacks
):
    lost = start(kind="lost")
    orphan = start(kind="orphan", task_name="")
    long_ago = timezone.now() - LOST_WAKEUP_AFTER - timedelta(minutes=1)
    TaskRun.objects.update(available_at=long_ago)
    with django_capture_on_commit_callbacks() as sent:
        reaped = reap_runs()
    assert (reaped.resent, reaped.failed, len(sent)) == (1, 1, 1)
    assert _reload(lost).state == "pending" and lost.available_at > long_ago
    assert (_reload(orphan).state, orphan.message) == (
        "failure",
        "No task carries out this run (it was started by an older version).",
    )


def test_it_deletes_finished_runs_after_a_while(start):
    old, recent = start(kind="old"), start(kind="recent")
    now = timezone.now()
    TaskRun.objects.filter(pk=old.pk).update(state="success", finished_at=now - KEEP_FINISHED)
    TaskRun.objects.filter(pk=recent.pk).update(state="success", finished_at=now)
    assert reap_runs(now=now + timedelta(seconds=1)).pruned == 1
    assert list(TaskRun.objects.values_list("kind", flat=True)) == ["recent"]


# --- the heartbeat (a thread of its own: needs committed rows) ------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_lease_alive_while_the_body_works(admin_a, settings):
    settings.MAILADMIN_TASK_LEASE_SECONDS = 0.4
    leases = []

    def body(run):
        for _ in range(4):  # 1.2 s: three leases long, with no progress reported
            time.sleep(0.3)
            leases.append(TaskRun.objects.get(pk=run.id).lease_expires_at)
        assert reap_runs().requeued == 0
        return Outcome(True, "slow but alive")

    behaviour["body"] = body
    run = task_run_start(
        actor=admin_a, kind="slow", title="Slow", task_name="x", tenant_id=admin_a.tenant_id
    )
    once_task(str(run.id))
    assert _reload(run).message == "slow but alive"
    assert leases == sorted(leases) and len(set(leases)) >= 3


@pytest.mark.django_db(transaction=True)
def test_it_lets_the_lease_lapse_after_the_time_limit(admin_a, settings):
    settings.MAILADMIN_TASK_LEASE_SECONDS = 0.3

    @run_task(name="tests.taskbase.stuck", max_runtime=0.2)
    def stuck_task(run: RunContext) -> Outcome:
        time.sleep(1.0)  # stuck past max_runtime: no more heartbeats
        assert TaskRun.objects.get(pk=run.id).lease_expires_at < timezone.now()
        assert reap_runs().failed == 1
        return Outcome(True, "finished too late")

    run = task_run_start(
        actor=admin_a, kind="stuck", title="Stuck", task_name="x", tenant_id=admin_a.tenant_id
    )
    stuck_task(str(run.id))
    run = _reload(run)
    assert run.state == "failure"  # the reaper's verdict stands; the late outcome is dropped
    assert "gave up after 1 of 1 attempts" in run.message
