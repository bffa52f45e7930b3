import pytest

from apps.queue.smtp import ListenerThread
from apps.telemetry.services import self_check_run, self_check_start
from mailadmin.core.models import TaskRun

pytestmark = pytest.mark.django_db


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


def _run(actor):
    run = TaskRun.objects.create(kind="self-check", title="Self-check", actor=actor)
    self_check_run(run_id=str(run.id))
    run.refresh_from_db()
    return run, {row["name"]: row for row in run.result["rows"]}


def test_it_passes_when_every_peer_answers(admin_a, listeners, dns_server, settings):
    settings.MAILADMIN_HOSTNAME = "mail.example.test"
    dns_server.set_zone("mail.example.test", {"A": ["127.0.0.1"]})
    run, rows = _run(admin_a)
    assert run.state == TaskRun.State.SUCCESS
    assert run.message == "All checks passed."
    assert (run.done, run.total) == (4, 4)
    assert rows["DNS resolver"]["detail"] == (
        f"{dns_server.address} answered: mail.example.test A 127.0.0.1"
    )


def test_it_reports_a_dns_server_failure(admin_a, listeners, dns_server, settings):
    settings.MAILADMIN_HOSTNAME = "mail.example.test"
    dns_server.set_zone("mail.example.test", "SERVFAIL")
    run, rows = _run(admin_a)
    assert run.state == TaskRun.State.FAILURE
    assert run.message == "Failed: DNS resolver"
    assert rows["DNS resolver"]["ok"] is False
    assert "SERVFAIL" in rows["DNS resolver"]["detail"]


def test_it_reports_listeners_that_do_not_answer(admin_a, settings):
    settings.MAILADMIN_SMTP_BIND = ("127.0.0.1", 9)
    run, rows = _run(admin_a)
    assert rows["SMTP inbound (MX)"]["ok"] is False
    assert rows["SMTP inbound (MX)"]["detail"].startswith("127.0.0.1:9 unreachable")


def test_it_runs_a_claimed_run_only_once(admin_a, listeners, dns_server):
    run, _ = _run(admin_a)
    finished = run.finished_at
    self_check_run(run_id=str(run.id))  # a redelivered task message
    run.refresh_from_db()
    assert run.finished_at == finished


def test_it_enqueues_only_after_commit(admin_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = self_check_start(actor=admin_a)
    assert len(callbacks) == 1
    assert run.state == TaskRun.State.PENDING
    assert run.tenant_id == admin_a.tenant_id
