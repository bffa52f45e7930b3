"""The self-check: a task on the task base that talks to the real peers; superadmins only."""

import pytest

from apps.queue.smtp import ListenerThread
from apps.telemetry.selectors import SuperadminOnly
from apps.telemetry.services import self_check_start
from apps.telemetry.tasks import self_check_task
from mailadmin.core.models import TaskRun

pytestmark = pytest.mark.django_db

SUPERADMINS_ONLY = (
    "The self-check is for superadmins only: it shows the database, listener "
    "addresses and resolver of the server."
)


@pytest.fixture
def listeners(settings):
    thread = ListenerThread({"inbound": ("127.0.0.1", 0), "submission": ("127.0.0.1", 0)})
    thread.start()
    settings.MAILADMIN_SMTP_BIND = ("127.0.0.1", thread.ports["inbound"])
    settings.MAILADMIN_SUBMISSION_BIND = ("127.0.0.1", thread.ports["submission"])
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def check_now(superadmin, django_capture_on_commit_callbacks):
    """check_now() -> (finished run, rows by name), carried out by the real task here."""

    def run(actor=superadmin):
        with django_capture_on_commit_callbacks(execute=False):
            started = self_check_start(actor=actor)
        self_check_task(str(started.id))
        started.refresh_from_db()
        return started, {row["name"]: row for row in started.result.get("rows", [])}

    return run


def test_it_passes_when_every_peer_answers(check_now, listeners, dns_server, settings):
    settings.MAILADMIN_HOSTNAME = "mail.example.test"
    dns_server.set_zone("mail.example.test", {"A": ["127.0.0.1"]})
    run, rows = check_now()
    assert run.state == TaskRun.State.SUCCESS
    assert run.message == "All checks passed."
    assert (run.done, run.total, run.attempts) == (4, 4, 1)
    assert rows["DNS resolver"]["detail"] == (
        f"{dns_server.address} answered: mail.example.test A 127.0.0.1"
    )


def test_it_reports_a_dns_server_failure(check_now, listeners, dns_server, settings):
    settings.MAILADMIN_HOSTNAME = "mail.example.test"
    dns_server.set_zone("mail.example.test", "SERVFAIL")
    run, rows = check_now()
    assert run.state == TaskRun.State.FAILURE
    assert run.message == "Failed: DNS resolver"
    assert rows["DNS resolver"]["ok"] is False
    assert "SERVFAIL" in rows["DNS resolver"]["detail"]


def test_it_reports_listeners_that_do_not_answer(check_now, settings):
    settings.MAILADMIN_SMTP_BIND = ("127.0.0.1", 9)
    run, rows = check_now()
    assert rows["SMTP inbound (MX)"]["ok"] is False
    assert rows["SMTP inbound (MX)"]["detail"].startswith("127.0.0.1:9 unreachable")


def test_it_runs_a_claimed_run_only_once(check_now, listeners, dns_server):
    run, _ = check_now()
    finished = run.finished_at
    self_check_task(str(run.id))  # a redelivered task message
    run.refresh_from_db()
    assert (run.finished_at, run.attempts) == (finished, 1)


def test_it_enqueues_only_after_commit_as_a_run_of_no_tenant(
    superadmin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = self_check_start(actor=superadmin)
    assert len(callbacks) == 1
    assert (run.state, run.task_name, run.tenant_id) == ("pending", "telemetry.self_check", None)


@pytest.mark.parametrize("who", ["admin_a", "user_a"])
def test_it_refuses_everyone_but_superadmins(who, request):
    with pytest.raises(SuperadminOnly) as exc:
        self_check_start(actor=request.getfixturevalue(who))
    assert exc.value.message == SUPERADMINS_ONLY
    assert not TaskRun.objects.exists()


def test_it_fails_a_run_whose_starter_is_no_longer_a_superadmin(superadmin):
    run = TaskRun.objects.create(
        kind="self-check",
        title="Self-check",
        actor=superadmin,
        actor_name="root",
        task_name="telemetry.self_check",
    )
    superadmin.is_superuser = False
    superadmin.save()
    self_check_task(str(run.id))
    run.refresh_from_db()
    assert (run.state, run.message) == ("failure", SUPERADMINS_ONLY)
