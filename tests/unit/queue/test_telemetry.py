"""The mail flow's telemetry: a message through the real inbound listener leaves a trace of
its SMTP session and counts in the minute's metrics; a delivery to the sink leaves the
delivered event in its message's trace."""

from __future__ import annotations

import smtplib
import time

import pytest
from django.core.cache import cache
from django.db.models import Sum

from apps.queue import delivery
from apps.queue.models import QueueDomain
from apps.queue.services import enqueue
from apps.telemetry import events
from apps.telemetry.models import MetricBucket, Trace, TraceEvent
from tests.conftest import TEST_PASSWORD
from tests.support.smtp_listeners import connect
from tests.unit.queue.conftest import REMOTE, message

MESSAGE = b"From: sender@remote.test\r\nSubject: hello\r\n\r\nHello Jane.\r\n"


@pytest.fixture(autouse=True)
def _empty_buffer():
    events.reset()
    yield
    events.reset()


def counted(name: str) -> int:
    return MetricBucket.objects.filter(name=name).aggregate(n=Sum("count"))["n"] or 0


@pytest.mark.django_db(transaction=True)
def test_it_traces_an_inbound_session_and_counts_its_message(inbound, mailboxes, settings):
    settings.MAILADMIN_SPAM_FILTER = True
    with connect(inbound) as client:
        client.mail("sender@remote.test")
        assert client.rcpt("nobody@example.test")[0] == 550
        assert client.rcpt("jane@example.test")[0] == 250
        code, _ = client.data(MESSAGE)
        assert code == 250
    assert events.flush() >= 6
    [trace] = Trace.objects.all()
    assert trace.kind == "smtp"
    assert trace.id.startswith("smtp-")
    types = list(TraceEvent.objects.filter(trace=trace).values_list("type", flat=True))
    assert types[:6] == [
        "smtp.connection-start",
        "smtp.mail-from",
        "smtp.rcpt-to-refused",
        "smtp.rcpt-to",
        "spam.verdict",
        "smtp.message-accepted",
    ]
    start = TraceEvent.objects.get(trace=trace, type="smtp.connection-start")
    assert start.data["listenerId"] == "smtp"
    assert start.data["localPort"] == inbound.ports["inbound"]
    assert start.data["remoteIp"] == "127.0.0.1"
    accepted = TraceEvent.objects.get(trace=trace, type="smtp.message-accepted")
    assert accepted.data["recipients"] == 1
    assert accepted.data["size"] == len(MESSAGE)
    assert counted("smtp.message-accepted") == 1
    assert counted("smtp.rcpt-to-refused") == 1
    size = MetricBucket.objects.get(name="message.size")
    assert (size.kind, size.count, size.sum) == ("histogram", 1, float(len(MESSAGE)))
    assert MetricBucket.objects.filter(name="spam.score", kind="histogram").exists()


@pytest.mark.django_db
def test_it_traces_a_delivery_to_the_sink(mx):
    queued = enqueue(return_path="sender@origin.test", recipients=["a@remote.test"], data=message())
    assert delivery.deliver(QueueDomain.objects.get(message=queued, name=REMOTE).pk, drain=False)
    mx.wait_for(1)
    events.flush()
    trace = Trace.objects.get(id=f"delivery-{queued.pk}")
    assert trace.kind == "delivery"
    assert [e.type for e in trace.events.all()] == ["delivery.attempt", "delivery.delivered"]
    delivered = trace.events.get(type="delivery.delivered")
    assert delivered.data["to"] == "a@remote.test"
    assert delivered.data["code"] == 250
    assert delivered.data["deliveryTime"] >= 0
    assert counted("delivery.delivered") == 1
    assert MetricBucket.objects.get(name="delivery.time").count == 1


def test_it_drops_events_past_the_buffer_and_counts_them(settings):
    settings.MAILADMIN_TELEMETRY_BUFFER = 3
    for _ in range(5):
        events.emit("smtp.connection-start", None)
    items, dropped = events.take()
    assert (len(items), dropped) == (3, 2)
    buckets = events.aggregate(items, dropped)
    assert sorted((name, b[1]) for (_, name), b in buckets.items()) == [
        ("smtp.connection-start", 3),
        ("telemetry.dropped", 2),
    ]


@pytest.mark.django_db(transaction=True)
def test_it_traces_submission_auth_and_the_queued_message(
    start_listeners, make_principal, tenant_a
):
    cache.clear()  # the AUTH lockout counters outlive a test's database
    alice = make_principal(name="alice", tenant=tenant_a)
    alice.emails.create(address="alice@example.test", position=0)
    submission = start_listeners("submission")
    with connect(submission, "submission") as client:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("alice", "wrong password")
        client.login("alice", TEST_PASSWORD)
        client.sendmail("alice@example.test", ["bob@remote.test"], MESSAGE)
    events.flush()
    [trace] = Trace.objects.all()
    types = [e.type for e in trace.events.all()]
    assert types[:5] == [
        "smtp.connection-start",
        "smtp.auth-failure",  # smtplib tries PLAIN, then LOGIN
        "smtp.auth-failure",
        "smtp.auth-success",
        "submission.message-queued",
    ]
    assert trace.events.get(type="smtp.connection-start").data["listenerId"] == "submission"
    assert trace.events.filter(type="smtp.auth-failure")[0].data == {"login": "alice"}
    assert counted("submission.message-queued") == 1


@pytest.mark.django_db(transaction=True)
def test_a_background_writer_flushes_without_being_asked(settings):
    settings.MAILADMIN_TELEMETRY_FLUSH_SECONDS = 0.05
    events._pid = 0  # as in a new process: the next emit starts its writer
    events.emit("fetch.run-start", "fetch-bg", job="j")
    deadline = time.monotonic() + 10
    while not TraceEvent.objects.filter(trace_id="fetch-bg").exists():
        assert time.monotonic() < deadline, "the writer did not flush"
        time.sleep(0.05)
    assert events.pending() == 0
    settings.MAILADMIN_TELEMETRY_FLUSH_SECONDS = 0  # its thread ends at its next wake-up
    events._wake.set()
    events._thread.join(5)
    assert not events._thread.is_alive()


@pytest.mark.django_db
def test_it_traces_a_fetch_run_with_its_messages_spam_verdict(imap, remote, admin_a, mailboxes):
    from datetime import timedelta

    from apps.queue import fetch, fetch_services
    from apps.queue.fetch_services import FetchValues
    from tests.unit.queue.test_fetch import HAM, Steps

    remote.add(HAM)
    job = fetch_services.fetch_job_create(
        actor=admin_a,
        values=FetchValues(
            mailbox="jane@example.test",
            protocol="imap",
            port=imap.port,
            username=imap.mailbox.username,
            password=imap.mailbox.password,
            security="none",
            host="127.0.0.1",
        ),
    )
    assert fetch.run_job(job.pk, progress=Steps(), lease=timedelta(minutes=5)).ok
    events.flush()
    [trace] = Trace.objects.all()
    assert trace.kind == "fetch"
    assert [e.type for e in trace.events.all()] == [
        "fetch.run-start",
        "spam.verdict",
        "fetch.run-end",
    ]
    assert trace.events.get(type="fetch.run-end").data == {"fetched": 1, "error": ""}


@pytest.mark.django_db
def test_it_traces_a_report_mail_that_could_not_be_read(tenant_a):
    from apps.accounts.models import Principal, PrincipalType
    from apps.reports.services import report_ingest_message

    domain = Principal.objects.create(
        name="example.test", type=PrincipalType.DOMAIN, tenant=tenant_a
    )
    [result] = report_ingest_message(
        recipient_domain=domain, message=b"Subject: not a report\r\n\r\nhello\r\n"
    )
    assert result.status == "failed"
    events.flush()
    [trace] = Trace.objects.all()
    assert trace.kind == "report"
    [event] = trace.events.all()
    assert event.type == "report.failed"
    assert event.data["domain"] == "example.test"
    assert event.data["reason"] == result.reason
