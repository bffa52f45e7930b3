"""Delivery to a real SMTP peer on loopback, found through a real DNS server on loopback."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from django.utils import timezone

from apps.queue import delivery, remote
from apps.queue.models import QueuedMessage, QueueDomain, QueueRecipient
from apps.queue.services import enqueue
from apps.reports.models import OutboundTlsResult
from apps.store import blobs
from tests.unit.queue.conftest import REMOTE, message

pytestmark = pytest.mark.django_db


def entry_of(queued: QueuedMessage, name: str = REMOTE) -> QueueDomain:
    return QueueDomain.objects.get(message=queued, name=name)


def run(entry: QueueDomain) -> int:
    return delivery.deliver(entry.pk, drain=False)


def test_it_stores_the_message_once_with_one_entry_per_domain_and_recipient():
    data = message()
    queued = enqueue(
        return_path="sender@origin.test",
        recipients=["a@remote.test", "B@Remote.test", "c@other.test", "a@remote.test"],
        data=data,
    )
    assert (queued.size, queued.subject, queued.status) == (len(data), "Hello", "scheduled")
    assert blobs.read(queued.blob_hash) == data
    assert sorted(queued.domains.values_list("name", flat=True)) == ["other.test", "remote.test"]
    assert sorted(queued.recipients.values_list("address", flat=True)) == [
        "B@Remote.test",
        "a@remote.test",
        "c@other.test",
    ]
    entry = entry_of(queued)
    assert entry.expires - queued.created == timedelta(days=5)
    assert entry.next_notify - queued.created == timedelta(days=1)


def test_it_wakes_a_worker_by_name_after_commit(django_capture_on_commit_callbacks, monkeypatch):
    """One wake-up for a burst: none more while one is on its way, until a worker takes it
    (clears the mark before it claims)."""
    sent = []
    monkeypatch.setattr(delivery, "wake", sent.append)
    delivery._wake_taken()  # no mark left by an earlier test
    with django_capture_on_commit_callbacks(execute=True):
        enqueue(return_path="", recipients=["x@remote.test"], data=message())
    assert sent == [None]  # deliver whatever is due
    with django_capture_on_commit_callbacks(execute=True):
        enqueue(return_path="", recipients=["y@remote.test"], data=message())
    assert sent == [None]
    delivery._wake_taken()
    with django_capture_on_commit_callbacks(execute=True):
        enqueue(return_path="", recipients=["z@remote.test"], data=message())
    assert sent == [None, None]
    delivery._wake_taken()


def test_it_delivers_to_the_mx_found_in_dns(mx):
    data = message()
    queued = enqueue(
        return_path="sender@origin.test", recipients=["a@remote.test", "b@remote.test"], data=data
    )
    assert run(entry_of(queued)) == 1
    (received,) = mx.wait_for(1)
    assert received.mail_from == "sender@origin.test"
    assert received.rcpt_tos == ["a@remote.test", "b@remote.test"]
    assert received.data.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")
    entry = entry_of(queued)
    assert (entry.status, entry.tls, entry.lease_expires_at) == ("delivered", False, None)
    assert set(queued.recipients.values_list("status", "code")) == {("delivered", 250)}
    assert queued.recipients.first().response == "250 2.0.0 OK: queued"
    queued.refresh_from_db()
    assert queued.status == "delivered"


def test_it_falls_back_to_the_domains_own_address_without_mx(dns_server, smtp_sink, settings):
    dns_server.set_zone(REMOTE, {"A": ["127.0.0.1"]})
    settings.MAILADMIN_SMTP_REMOTE_PORT = smtp_sink.port
    queued = enqueue(return_path="", recipients=["a@remote.test"], data=message())
    run(entry_of(queued))
    assert smtp_sink.wait_for(1)[0].rcpt_tos == ["a@remote.test"]


def test_it_tries_the_next_mx_when_the_best_one_does_not_answer(dns_server, smtp_sink, settings):
    dns_server.set_zone(REMOTE, {"MX": [(5, "dead.remote.test."), (10, "mx.remote.test.")]})
    dns_server.set_zone("dead.remote.test", {"A": ["127.0.0.2"]})  # nobody listens there
    dns_server.set_zone("mx.remote.test", {"A": ["127.0.0.1"]})
    settings.MAILADMIN_SMTP_REMOTE_PORT = smtp_sink.port
    queued = enqueue(return_path="", recipients=["a@remote.test"], data=message())
    run(entry_of(queued))
    assert len(smtp_sink.wait_for(1)) == 1
    assert entry_of(queued).status == "delivered"


def test_it_reuses_the_connection_for_the_next_message(mx):
    for i in range(3):
        queued = enqueue(return_path="", recipients=[f"r{i}@remote.test"], data=message(f"m{i}"))
        run(entry_of(queued))
    assert len(mx.wait_for(3)) == 3
    assert mx.handler.connections == 1
    assert len(remote.pool) == 1


@pytest.mark.parametrize("pipelining", [True, False])
def test_it_pipelines_when_offered_with_the_same_outcomes(mx, pipelining):
    """PIPELINING (RFC 2920) or one command at a time: a refused recipient keeps its own
    answer, the others get the body, dot-stuffed, once."""
    mx.handler.pipelining = pipelining
    mx.handler.rcpt_replies["gone@remote.test"] = "550 5.1.1 no such user"
    data = message(body="line one\r\n.starts with a dot\r\n")
    queued = enqueue(
        return_path="s@origin.test", recipients=["a@remote.test", "gone@remote.test"], data=data
    )
    run(entry_of(queued))
    [received] = mx.wait_for(1)
    assert (received.mail_from, received.rcpt_tos) == ("s@origin.test", ["a@remote.test"])
    assert received.data.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")
    replies = dict(queued.recipients.values_list("address", "response"))
    assert replies == {
        "a@remote.test": "250 2.0.0 OK: queued",
        "gone@remote.test": "550 5.1.1 no such user",
    }


@pytest.mark.parametrize("pipelining", [True, False])
def test_it_sends_bare_line_ends_as_crlf_so_no_dot_line_can_be_smuggled(mx, pipelining):
    """A message stored with bare LF or CR goes out with CRLF line ends and its dot lines
    stuffed, pipelined or not: "<CR>.<CR><LF>" cannot end DATA early at a peer that takes a
    bare CR (or LF) for a line end."""
    mx.handler.pipelining = pipelining
    data = message(body="one\nsmuggled\r.\r\nMAIL FROM:<evil@x.test>\r\nlast\r.\nend\r\n")
    queued = enqueue(return_path="s@origin.test", recipients=["a@remote.test"], data=data)
    run(entry_of(queued))
    [received] = mx.wait_for(1)
    assert received.data.endswith(
        b"\r\n\r\none\r\nsmuggled\r\n.\r\nMAIL FROM:<evil@x.test>\r\nlast\r\n.\r\nend\r\n\r\n"
    )
    assert b"\r." not in received.data.replace(b"\r\n", b"")


def test_it_pipelines_a_refused_sender_without_sending_the_body(mx):
    mx.handler.rcpt_replies["a@remote.test"] = "451 4.7.1 Greylisted"
    queued = enqueue(return_path="", recipients=["a@remote.test"], data=message())
    run(entry_of(queued))
    assert QueueRecipient.objects.get().response == "451 4.7.1 Greylisted"
    queued = enqueue(return_path="", recipients=["b@remote.test"], data=message("next"))
    run(entry_of(queued))  # the same connection, still in step
    assert mx.wait_for(1)[0].rcpt_tos == ["b@remote.test"]
    assert mx.handler.connections == 1


def test_it_records_one_tls_outcome_per_session_and_domain(mx):
    """TLS-RPT counts sessions (RFC 8460): three messages over one pooled connection are one."""
    for i in range(3):
        run(entry_of(enqueue(return_path="", recipients=[f"r{i}@remote.test"], data=message())))
    assert len(mx.wait_for(3)) == 3
    assert mx.handler.connections == 1
    assert OutboundTlsResult.objects.count() == 1


def test_it_reconnects_when_a_pooled_connection_went_idle_too_long(mx, settings):
    settings.MAILADMIN_QUEUE_POOL_IDLE_SECONDS = 0
    for i in range(2):
        run(entry_of(enqueue(return_path="", recipients=[f"r{i}@remote.test"], data=message())))
    assert len(mx.wait_for(2)) == 2
    assert mx.handler.connections == 2


def test_it_schedules_a_retry_on_451_by_the_schedule(mx, settings):
    settings.MAILADMIN_QUEUE_RETRY_SCHEDULE = [120, 300, 600]
    mx.handler.rcpt_replies["a@remote.test"] = "451 4.7.1 Greylisted, try later"
    queued = enqueue(return_path="sender@origin.test", recipients=["a@remote.test"], data=message())
    entry = entry_of(queued)
    before = timezone.now()
    run(entry)
    entry.refresh_from_db()
    assert (entry.status, entry.retry_num) == ("scheduled", 1)
    assert before + timedelta(seconds=120) <= entry.next_retry
    assert entry.next_retry <= timezone.now() + timedelta(seconds=120)
    assert entry.last_error == "451 4.7.1 Greylisted, try later"
    rcpt = queued.recipients.get()
    assert (rcpt.status, rcpt.code, rcpt.response) == (
        "scheduled",
        451,
        "451 4.7.1 Greylisted, try later",
    )
    assert mx.messages == []
    assert run(entry) == 0  # not due yet: nothing happens

    for retry_num, delay in ((2, 300), (3, 600), (4, 600)):  # the last step repeats
        QueueDomain.objects.filter(pk=entry.pk).update(next_retry=timezone.now())
        moment = timezone.now()
        run(entry)
        entry.refresh_from_db()
        assert entry.retry_num == retry_num
        assert moment + timedelta(seconds=delay) <= entry.next_retry
        assert entry.next_retry <= timezone.now() + timedelta(seconds=delay)

    del mx.handler.rcpt_replies["a@remote.test"]
    QueueDomain.objects.filter(pk=entry.pk).update(next_retry=timezone.now())
    run(entry)
    assert mx.wait_for(1)[0].rcpt_tos == ["a@remote.test"]
    assert queued.recipients.get().status == "delivered"


def test_it_retries_when_no_mx_answers(dns_server, settings):
    dns_server.set_zone(REMOTE, {"MX": [(10, "mx.remote.test.")]})
    dns_server.set_zone("mx.remote.test", {"A": ["127.0.0.2"]})
    settings.MAILADMIN_SMTP_REMOTE_PORT = 9  # discard: refused on loopback
    queued = enqueue(return_path="", recipients=["a@remote.test"], data=message())
    run(entry_of(queued))
    entry = entry_of(queued)
    assert (entry.status, entry.retry_num) == ("scheduled", 1)
    assert entry.last_error.startswith("Connection failed: mx.remote.test[127.0.0.2]:9")


def test_it_fails_on_550_and_sends_a_failure_dsn_to_the_sender(mx):
    mx.handler.rcpt_replies["gone@remote.test"] = "550 5.1.1 <gone@remote.test>: no such user"
    data = message("Quarterly figures")
    queued = enqueue(
        return_path="sender@remote.test",
        recipients=["gone@remote.test", "ok@remote.test"],
        data=data,
    )
    run(entry_of(queued))
    assert mx.wait_for(1)[0].rcpt_tos == ["ok@remote.test"]
    statuses = dict(queued.recipients.values_list("address", "status"))
    assert statuses == {"gone@remote.test": "failed", "ok@remote.test": "delivered"}
    entry = entry_of(queued)
    assert entry.status == "failed"
    assert entry.last_error == "550 5.1.1 <gone@remote.test>: no such user"

    bounce = QueuedMessage.objects.exclude(pk=queued.pk).get()
    assert bounce.return_path == ""  # DSNs go out from the null sender
    assert list(bounce.recipients.values_list("address", flat=True)) == ["sender@remote.test"]
    run(entry_of(bounce))
    dsn_received = mx.wait_for(2)[1]
    assert dsn_received.mail_from == "<>"  # aiosmtpd keeps the null path as sent
    report = message_from_bytes(dsn_received.data, policy=policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    human, status, headers = report.iter_parts()
    assert "gone@remote.test" in human.get_content()
    assert status.get_content_type() == "message/delivery-status"
    text = status.as_bytes().decode()
    assert "Final-Recipient: rfc822; gone@remote.test" in text
    assert "Action: failed" in text
    assert "Status: 5.1.1" in text
    assert "Diagnostic-Code: smtp; 550 5.1.1 <gone@remote.test>: no such user" in text
    assert "Remote-MTA: dns; mx.remote.test" in text
    assert "ok@remote.test" not in text
    assert headers.get_content_type() == "text/rfc822-headers"
    assert "Subject: Quarterly figures" in headers.as_string()


def test_it_sends_no_dsn_for_a_null_return_path(mx):
    mx.handler.rcpt_replies["gone@remote.test"] = "550 5.1.1 no such user"
    queued = enqueue(return_path="", recipients=["gone@remote.test"], data=message())
    run(entry_of(queued))
    assert entry_of(queued).status == "failed"
    assert QueuedMessage.objects.count() == 1


def test_it_fails_a_domain_with_a_null_mx_at_once(dns_server):
    dns_server.set_zone(REMOTE, {"MX": [(0, ".")]})
    queued = enqueue(return_path="sender@origin.test", recipients=["a@remote.test"], data=message())
    run(entry_of(queued))
    rcpt = queued.recipients.get()
    assert (rcpt.status, rcpt.code) == ("failed", 556)
    assert rcpt.response == "556 5.1.10 Domain remote.test does not accept mail (null MX)"
    bounce = QueuedMessage.objects.exclude(pk=queued.pk).get()
    text = blobs.read(bounce.blob_hash).decode()
    assert "Status: 5.1.10" in text and "a@remote.test" in text


def test_it_fails_a_domain_that_does_not_exist(dns_server):
    queued = enqueue(return_path="", recipients=["a@nowhere.test"], data=message())
    run(entry_of(queued, "nowhere.test"))
    rcpt = queued.recipients.get()
    assert (rcpt.status, rcpt.code) == ("failed", 550)
    assert "Host or domain name not found: nowhere.test" in rcpt.response


def test_it_retries_when_dns_fails(dns_server):
    dns_server.set_zone(REMOTE, "SERVFAIL")
    queued = enqueue(return_path="", recipients=["a@remote.test"], data=message())
    run(entry_of(queued))
    entry = entry_of(queued)
    assert (entry.status, entry.retry_num) == ("scheduled", 1)
    assert "MX lookup of remote.test failed" in entry.last_error


def test_it_fails_with_a_dsn_once_the_message_expires(mx):
    mx.handler.rcpt_replies["a@remote.test"] = "451 4.3.0 try later"
    queued = enqueue(return_path="sender@origin.test", recipients=["a@remote.test"], data=message())
    QueueDomain.objects.filter(message=queued).update(expires=timezone.now())
    run(entry_of(queued))
    rcpt = queued.recipients.get()
    assert rcpt.status == "failed"
    assert rcpt.response == "Delivery time expired; last error: 451 4.3.0 try later"
    bounce = QueuedMessage.objects.exclude(pk=queued.pk).get()
    assert "Status: 4.3.0" in blobs.read(bounce.blob_hash).decode()


def test_it_sends_one_delay_dsn_at_next_notify(mx):
    mx.handler.rcpt_replies["a@remote.test"] = "451 4.7.1 Greylisted"
    queued = enqueue(return_path="sender@origin.test", recipients=["a@remote.test"], data=message())
    run(entry_of(queued))
    QueueDomain.objects.filter(message=queued).update(next_notify=timezone.now())
    assert delivery.sweep().delay_notices == 1
    assert delivery.sweep().delay_notices == 0
    notice = QueuedMessage.objects.exclude(pk=queued.pk).get()
    text = blobs.read(notice.blob_hash).decode()
    assert "Action: delayed" in text and "Diagnostic-Code: smtp; 451 4.7.1 Greylisted" in text
    assert "Will-Retry-Until:" in text
    assert entry_of(queued).next_notify is None


def test_a_second_claim_of_a_claimed_entry_gets_nothing(mx):
    queued = enqueue(return_path="", recipients=["a@remote.test"], data=message())
    entry = entry_of(queued)
    first = delivery.claim(entry.pk)
    assert first is not None
    assert delivery.claim(entry.pk) is None
    assert run(entry) == 0
    assert mx.messages == []
    # once its lease lapses (the worker died), another worker may take it
    QueueDomain.objects.filter(pk=entry.pk).update(lease_expires_at=timezone.now())
    assert run(entry) == 1
    assert len(mx.wait_for(1)) == 1


def test_an_outcome_is_not_recorded_by_a_worker_that_lost_its_claim(mx):
    queued = enqueue(return_path="", recipients=["a@remote.test"], data=message())
    entry = entry_of(queued)
    old = delivery.claim(entry.pk)
    QueueDomain.objects.filter(pk=entry.pk).update(lease_expires_at=timezone.now())
    new = delivery.claim(entry.pk)
    assert new not in (None, old)
    delivery.deliver_claimed(entry.pk, old)
    assert QueueRecipient.objects.get().status == "scheduled"  # not the old claim's to say


def test_the_sweep_wakes_entries_whose_wakeup_was_lost(monkeypatch):
    woken = []
    monkeypatch.setattr(delivery, "wake", woken.append)
    queued = enqueue(return_path="", recipients=["a@remote.test"], data=message())
    entry = entry_of(queued)
    assert delivery.sweep().woken == 0  # just queued: its own wake-up is on its way
    QueueDomain.objects.filter(pk=entry.pk).update(next_retry=timezone.now() - timedelta(minutes=5))
    assert delivery.sweep().woken == 1
    assert woken == [entry.pk]


@pytest.mark.parametrize("handshake_fails", [False, True])
def test_it_uses_starttls_when_offered_even_with_a_self_signed_certificate(
    dns_server, settings, tmp_path, handshake_fails
):
    """...and sends in plain text when the handshake fails (opportunistic TLS)."""
    import ssl

    from tests.support.smtp_sink import SmtpSink

    too_old = ssl.TLSVersion.TLSv1_1 if handshake_fails else None
    sink = SmtpSink(tls_dir=str(tmp_path), tls_maximum_version=too_old).start()
    try:
        dns_server.set_zone(REMOTE, {"MX": [(10, "mx.remote.test.")]})
        dns_server.set_zone("mx.remote.test", {"A": ["127.0.0.1"]})
        settings.MAILADMIN_SMTP_REMOTE_PORT = sink.port
        queued = enqueue(return_path="", recipients=["a@remote.test"], data=message())
        run(entry_of(queued))
        (received,) = sink.wait_for(1)
    finally:
        sink.stop()
    assert received.tls is not handshake_fails
    assert entry_of(queued).tls is not handshake_fails
    # What our TLS-RPT report to remote.test will count (apps.reports.outgoing).
    [outcome] = OutboundTlsResult.objects.all()
    assert (outcome.recipient_domain, outcome.mx_host, outcome.receiving_ip) == (
        "remote.test", "mx.remote.test", "127.0.0.1")  # fmt: skip
    assert (outcome.success, outcome.result_type) == (
        (False, "validation-failure") if handshake_fails else (True, ""))  # fmt: skip
    assert outcome.additional_info.startswith("STARTTLS failed") is handshake_fails


def test_it_records_a_peer_without_starttls_for_tls_reports(mx):
    run(entry_of(enqueue(return_path="", recipients=["a@remote.test"], data=message())))
    [outcome] = OutboundTlsResult.objects.all()
    assert (outcome.recipient_domain, outcome.success, outcome.result_type) == (
        "remote.test", False, "starttls-not-supported")  # fmt: skip
