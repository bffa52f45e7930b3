"""Fetch jobs against real loopback IMAP and POP3 servers (tests/support/mail_servers.py):
fetched mail goes through the MX's pipeline (spam filter headers, Junk, quarantine,
reject), nothing is fetched twice, deleteMailsOnServer deletes only what was stored, and
failures (a bad password, an oversized message) are recorded with the server's words."""

from __future__ import annotations

import pytest

from apps.queue import fetch, fetch_services
from apps.queue.fetch_services import FetchValues
from apps.queue.models import FetchEntry, FetchJob, FetchSeen
from apps.queue.smtp.inbound import BLOCKED_SENDER
from apps.queue.tasks import fetch_due_task, fetch_job_task
from apps.spamfilter.models import QuarantinedMessage, SenderListEntry
from apps.store import blobs
from apps.store.models import Message
from mailadmin.core.models import TaskRun
from tests.support.mail_servers import (
    BAD_LOGIN_IMAP,
    BAD_LOGIN_POP3,
    ImapServer,
    Pop3Server,
    RemoteMailbox,
)
from tests.support.tls_ca import Authority

pytestmark = pytest.mark.django_db

# The client the remote provider accepted the message from (its Received line, under the
# Return-Path it recorded): what SPF, iprev and the HELO checks judge for fetched mail.
SENDER_IP = "1.2.3.4"
HAM = (
    b"Return-Path: <sender@remote.test>\r\n"
    b"Received: from mail.remote.test (mail.remote.test [1.2.3.4])\r\n"
    b"\tby mx.provider.test (Postfix) with ESMTPS id 4Qx1;\r\n"
    b"\tMon, 30 Nov 2026 10:00:01 +0000\r\n"
    b"From: Sender <sender@remote.test>\r\n"
    b"To: Jane <jane@example.test>\r\n"
    b"Subject: Lunch on Thursday\r\n"
    b"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <lunch-1@remote.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Shall we meet at noon at the usual place? Bring the notes from Monday.\r\n"
    b".A line that starts with a dot.\r\n"
)
GTUBE = HAM.replace(b"lunch-1@", b"gtube-1@").replace(
    b"Shall we meet", b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"
)


class Steps:
    def begin(self, total: int) -> None:
        self.total = total

    def step(self, done: int, message: str) -> None:
        self.last = message


@pytest.fixture
def make_job(admin_a, mailboxes, dns_server):
    # remote.test's SPF allows its sender's IP only, never the loopback IMAP/POP3 server.
    dns_server.set_zone("remote.test", {"TXT": [f"v=spf1 ip4:{SENDER_IP} -all"]})
    dns_server.set_zone("4.3.2.1.in-addr.arpa", {"PTR": ["mail.remote.test."]})
    dns_server.set_zone("mail.remote.test", {"A": [SENDER_IP]})

    def make(server, *, protocol="imap", **values):
        values.setdefault("security", "none")
        values.setdefault("host", "127.0.0.1")
        return fetch_services.fetch_job_create(
            actor=admin_a,
            values=FetchValues(
                mailbox="jane@example.test",
                protocol=protocol,
                port=server.port,
                username=server.mailbox.username,
                password=server.mailbox.password,
                **values,
            ),
        )

    return make


def run(job: FetchJob):
    from datetime import timedelta

    outcome = fetch.run_job(job.pk, progress=Steps(), lease=timedelta(minutes=5))
    job.refresh_from_db()
    return outcome


def stored(principal) -> list[tuple[str, bytes]]:
    return [
        (m.folder.name, blobs.read(m.blob_hash))
        for m in Message.objects.filter(principal=principal).select_related("folder").order_by("id")
    ]


def test_it_fetches_imap_mail_into_the_inbox_through_the_spam_filter(
    imap, remote, make_job, mailboxes
):
    remote.add(HAM)
    job = make_job(imap)
    outcome = run(job)
    assert outcome.ok, outcome.message
    assert outcome.message == "1 message(s) fetched, 0 failed."
    [(folder, data)] = stored(mailboxes["jane"])
    assert folder == "INBOX"
    head = data.split(b"\r\n\r\n", 1)[0]
    assert data.startswith(b"Authentication-Results: ")
    assert b"spf=pass smtp.mailfrom=sender@remote.test" in head and b"dmarc=pass" in head
    assert b"X-Spam-Status: No" in head
    assert b"\tby mail.mailadmin.test (mailadmin) with IMAP id " in head
    assert b"Received: from 127.0.0.1 ([127.0.0.1])" in head
    assert data.endswith(HAM)  # byte for byte, the dot line too
    assert (job.last_status, job.last_error, job.last_fetched) == ("success", "", 1)
    [entry] = FetchEntry.objects.all()
    assert (entry.status, entry.reason, entry.subject, entry.message_id, entry.sender) == (
        "success",
        "Stored in INBOX.",
        "Lunch on Thursday",
        "<lunch-1@remote.test>",
        "sender@remote.test",
    )
    assert entry.size == len(HAM) and entry.tenant_id == job.tenant_id
    assert any(c.endswith("(BODY.PEEK[])") for c in imap.commands)
    assert remote.uids() == [1]  # not deleted: the job does not say so


def test_a_second_run_fetches_nothing_new(imap, remote, make_job, mailboxes):
    remote.add(HAM)
    job = make_job(imap)
    run(job)
    imap.commands.clear()
    assert run(job).message == "0 message(s) fetched, 0 failed."
    assert not [c for c in imap.commands if "FETCH" in c]  # one SEARCH, no sizes, no bodies
    remote.add(HAM.replace(b"lunch-1@", b"lunch-2@"))
    assert run(job).message == "1 message(s) fetched, 0 failed."
    assert len(stored(mailboxes["jane"])) == 2
    assert FetchEntry.objects.count() == 2


def test_a_new_uidvalidity_fetches_the_folder_again(imap, remote, make_job, mailboxes):
    remote.add(HAM)
    job = make_job(imap)
    run(job)
    remote.folders["INBOX"].uidvalidity += 1
    assert run(job).message == "1 message(s) fetched, 0 failed."
    assert FetchSeen.objects.filter(job=job).count() == 1  # the old UIDVALIDITY's row is gone


def test_delete_mails_on_server_removes_what_was_stored(imap, remote, make_job, mailboxes):
    remote.add(HAM)
    remote.add(HAM.replace(b"lunch-1@", b"lunch-2@"))
    job = make_job(imap, delete_on_server=True)
    assert run(job).message == "2 message(s) fetched, 0 failed."
    assert remote.uids() == []
    assert len(stored(mailboxes["jane"])) == 2
    assert run(job).message == "0 message(s) fetched, 0 failed."
    assert not FetchSeen.objects.filter(job=job).exists()  # pruned: gone from the server


def test_spam_goes_to_junk_and_quarantine_as_the_mx_would(
    imap, remote, make_job, mailboxes, settings
):
    settings.MAILADMIN_SPAM_THRESHOLD_SPAM = 0.5
    remote.add(b"From: sender@remote.test\r\nSubject: hello\r\n\r\nHello Jane.\r\n")
    job = make_job(imap)
    run(job)
    [(folder, data)] = stored(mailboxes["jane"])
    assert folder == "Junk" and b"X-Spam-Status: Yes" in data
    assert FetchEntry.objects.get().reason == "Stored in Junk."

    settings.MAILADMIN_SPAM_THRESHOLD_QUARANTINE = 0.5
    remote.add(b"From: other@remote.test\r\nSubject: again\r\n\r\nHello again.\r\n")
    run(job)
    held = QuarantinedMessage.objects.get()
    assert held.mailbox == mailboxes["jane"]
    assert FetchEntry.objects.order_by("-id")[0].reason.startswith("Held in the quarantine")


def test_a_message_the_mx_would_refuse_is_held_in_the_quarantine(
    imap, remote, make_job, mailboxes, settings
):
    """No client is there to hear a 550: a fetched message the filter would refuse was
    a failed entry left on the server, never fetched again, where the owner, who fetches
    because that mailbox is not read, never saw it. It is held for review instead (and,
    held here, deleted on the server when the job says so)."""
    remote.add(GTUBE)  # a rule whose action is reject
    settings.MAILADMIN_SPAM_THRESHOLD_REJECT = 0.5  # and a score over the threshold
    remote.add(b"From: other@remote.test\r\nSubject: again\r\n\r\nHello again.\r\n")
    job = make_job(imap, delete_on_server=True)
    outcome = run(job)
    assert outcome.message == "2 message(s) fetched, 0 failed."
    assert not Message.objects.exists()
    held = QuarantinedMessage.objects.order_by("id")
    assert [h.mailbox for h in held] == [mailboxes["jane"]] * 2
    assert "GTUBE" in held[0].tags
    assert any("reject threshold" in reason for reason in held[1].reasons)
    assert b"X-Spam-Status: Yes" in blobs.read(held[1].blob_hash)
    entries = FetchEntry.objects.order_by("id")
    assert [e.status for e in entries] == ["success"] * 2
    assert all(e.reason.startswith("Held in the quarantine") for e in entries)
    assert remote.uids() == []
    assert job.last_status == "success"


def test_an_oversized_message_is_recorded_failed_and_not_downloaded(
    imap, remote, make_job, mailboxes, settings
):
    settings.MAILADMIN_MAX_MESSAGE_SIZE = 1000
    remote.add(HAM + b"x" * 2000 + b"\r\n")
    remote.add(HAM.replace(b"lunch-1@", b"lunch-2@"))
    job = make_job(imap, delete_on_server=True)
    assert run(job).message == "1 message(s) fetched, 1 failed."
    failed = FetchEntry.objects.get(status="failed")
    assert failed.reason == (
        f"Message size {len(HAM) + 2002} bytes exceeds the maximum of 1000 bytes "
        "(MAILADMIN_MAX_MESSAGE_SIZE); not fetched."
    )
    fetched = [c for c in imap.commands if "BODY.PEEK[]" in c]
    assert fetched == [fetched[0]] and " 2 (BODY.PEEK[])" in fetched[0]
    assert remote.uids() == [1]  # the big one stays on the server


def test_a_bad_password_is_the_jobs_error_with_the_servers_message(
    imap, remote, make_job, admin_a, mailboxes
):
    job = make_job(imap)
    remote.password = "changed-remotely"
    outcome = run(job)
    assert not outcome.ok
    assert job.last_status == "error"
    assert job.last_error == f"Login failed: {BAD_LOGIN_IMAP}"
    validation = fetch_services.fetch_job_validate(actor=admin_a, job=job)
    assert (validation.ok, validation.message) == (False, f"Login failed: {BAD_LOGIN_IMAP}")


def test_pop3_fetches_by_uidl_and_deletes_after_storing(pop3, remote, make_job, mailboxes):
    remote.add(HAM)
    job = make_job(pop3, protocol="pop3")
    assert run(job).message == "1 message(s) fetched, 0 failed."
    assert run(job).message == "0 message(s) fetched, 0 failed."
    [(folder, data)] = stored(mailboxes["jane"])
    assert folder == "INBOX" and data.endswith(HAM)
    assert b"with POP3 id " in data
    assert FetchSeen.objects.get(job=job).uid == "uidl-000001"
    assert remote.uids() == [1]
    job.delete_on_server = True
    job.save()
    remote.add(HAM.replace(b"lunch-1@", b"lunch-2@"))
    assert run(job).message == "1 message(s) fetched, 0 failed."
    assert remote.uids() == []  # the new one, and the one stored by the earlier run


def test_pop3_bad_password(pop3, remote, make_job, mailboxes):
    job = make_job(pop3, protocol="pop3")
    remote.password = "nope"
    run(job)
    assert job.last_error == f"Login failed: {BAD_LOGIN_POP3}"


@pytest.mark.parametrize("server_class", [ImapServer, Pop3Server])
@pytest.mark.parametrize("tls", ["ssl", "starttls"])
def test_tls_connections_are_verified_and_recorded(
    server_class, tls, remote, make_job, mailboxes, tmp_path, settings
):
    authority = Authority(tmp_path)
    settings.MAILADMIN_TLS_CA_FILE = str(authority.cert_file)
    issued = authority.issue("localhost", ips=("127.0.0.1",))
    server = server_class(remote, tls=tls, context=issued.server_context()).start()
    try:
        remote.add(HAM)
        protocol = "imap" if server_class is ImapServer else "pop3"
        job = make_job(server, protocol=protocol, security=tls)
        outcome = run(job)
        assert outcome.ok, outcome.message
        [(_, data)] = stored(mailboxes["jane"])
        assert b"(using TLSv1.3 with cipher " in data
        assert b"X-Spam-Status: No" in data
    finally:
        server.stop()


def test_an_untrusted_certificate_fails_the_run(remote, make_job, mailboxes, tmp_path, settings):
    settings.MAILADMIN_TLS_CA_FILE = str(Authority(tmp_path, "trusted").cert_file)
    stranger = Authority(tmp_path, "stranger").issue("localhost", ips=("127.0.0.1",))
    server = ImapServer(remote, tls="ssl", context=stranger.server_context()).start()
    try:
        job = make_job(server, security="ssl")
        run(job)
        assert job.last_error.startswith(f"TLS with 127.0.0.1:{server.port} failed: ")
        assert "certificate" in job.last_error
    finally:
        server.stop()


def test_starttls_refused_by_the_server_is_an_error(imap, make_job, mailboxes):
    job = make_job(imap, security="starttls")
    run(job)
    assert job.last_error.startswith(f"STARTTLS with 127.0.0.1:{imap.port} failed: ")


def test_validate_lists_the_folders_and_names_the_missing_ones(imap, remote, make_job, admin_a):
    remote.folders["Archive"] = type(remote.folders["INBOX"])()
    job = make_job(imap, folders=["INBOX", "Archive", "Gone"])
    result = fetch_services.fetch_job_validate(actor=admin_a, job=job)
    assert result.as_dict() == {
        "ok": False,
        "message": f"Logged in to 127.0.0.1:{imap.port} over IMAP; 2 folder(s). "
        "Not on the server: Gone.",
        "folders": ["INBOX", "Archive"],
        "missingFolders": ["Gone"],
        "destination": "jane@example.test receives the fetched mail.",
    }


def test_a_missing_folder_is_an_error_but_the_others_are_fetched(imap, remote, make_job, mailboxes):
    remote.add(HAM)
    job = make_job(imap, folders=["Gone", "INBOX"])
    assert run(job).message == (
        "1 message(s) fetched, 0 failed. Folder Gone: [NONEXISTENT] Mailbox does not exist: Gone"
    )
    assert job.last_status == "partial"
    assert job.last_error == "Folder Gone: [NONEXISTENT] Mailbox does not exist: Gone"


def test_beat_starts_one_run_per_due_job_and_the_task_runs_it(
    imap, remote, make_job, mailboxes, django_capture_on_commit_callbacks
):
    remote.add(HAM)
    job = make_job(imap)
    with django_capture_on_commit_callbacks(execute=False):
        assert fetch_due_task() == 1
        assert fetch_due_task() == 1  # still pending: the same run, no twin
    [task_run] = TaskRun.objects.filter(kind=f"queue.fetch:{job.uuid}")
    fetch_job_task(str(task_run.pk))
    task_run.refresh_from_db()
    assert (task_run.state, task_run.message) == ("success", "1 message(s) fetched, 0 failed.")
    job.refresh_from_db()
    assert job.claim_id is None and job.next_run_at > job.last_run_at
    with django_capture_on_commit_callbacks(execute=False):
        assert fetch_due_task() == 0  # not due before its interval


def test_a_claimed_job_is_not_run_twice(imap, remote, make_job, mailboxes):
    from datetime import timedelta

    remote.add(HAM)
    job = make_job(imap)
    assert fetch.claim(job.pk, lease=timedelta(minutes=5)) is not None
    outcome = run(job)
    assert outcome.message == "Another run of this fetch job is under way."
    assert not Message.objects.exists()


def test_plain_text_is_refused_to_a_remote_host(admin_a, mailboxes):
    from mailadmin.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        fetch_services.fetch_job_create(
            actor=admin_a,
            values=FetchValues(
                mailbox="jane@example.test",
                protocol="imap",
                host="imap.remote.test",
                security="none",
                username="u",
                password="p",
            ),
        )
    assert refused.value.message == fetch.PLAINTEXT_REFUSED


def test_the_password_is_sealed_in_the_database(make_job, imap, mailboxes):
    from django.db import connection

    job = make_job(imap)
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM queue_fetchjob WHERE id = %s", [job.pk])
        [raw] = cursor.fetchone()
    assert raw and job.mailbox.name and "remote-secret" not in raw
    assert FetchJob.objects.get(pk=job.pk).password == "remote-secret"


def test_fetched_mail_is_left_out_of_our_outgoing_dmarc_reports(imap, remote, make_job, mailboxes):
    from apps.reports.models import InboundAuthResult

    remote.add(HAM)
    run(make_job(imap))
    assert Message.objects.count() == 1
    assert not InboundAuthResult.objects.exists()


def _verdict(data: bytes) -> tuple[str, set[str]]:
    """A stored message's Authentication-Results (unfolded) and X-Spam-Result tags."""
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    fields = head.replace("\r\n\t", " ").split("\r\n")
    [results] = [f for f in fields if f.startswith("Authentication-Results:")]
    [spam] = [f for f in fields if f.startswith("X-Spam-Result:")]
    tags = {part.split()[0] for part in spam.removeprefix("X-Spam-Result:").split(",")}
    return results, tags


def test_fetched_mail_is_judged_by_the_client_its_providers_received_line_names(
    imap, remote, make_job, mailboxes
):
    remote.add(HAM)
    run(make_job(imap))
    [(_, data)] = stored(mailboxes["jane"])
    results, tags = _verdict(data)
    assert (
        "spf=pass smtp.mailfrom=sender@remote.test "
        f"(fetched; judged client {SENDER_IP}, from its Received header)"
    ) in results
    assert f"iprev=pass policy.iprev={SENDER_IP} (mail.remote.test)" in results
    assert "dmarc=pass header.from=remote.test" in results  # by SPF alone: no DKIM
    assert "dkim=none" in results
    assert "127.0.0.1" not in results  # the IMAP server we fetched from is never judged
    assert {"SPF_ALLOW", "DMARC_POLICY_ALLOW"} <= tags
    assert not tags & {"SPF_FAIL", "DMARC_POLICY_REJECT", "RDNS_NONE", "HELO_IPREV_MISMATCH"}


def test_rcvd_tls_last_is_about_the_providers_hop_not_the_fetch_connection(
    imap, remote, make_job, mailboxes
):
    """The fetch itself runs without TLS here (security "none"): the tag follows the
    `with ESMTPS` / `with ESMTP` of the provider's Received line."""
    remote.add(HAM)
    remote.add(HAM.replace(b"lunch-1@", b"lunch-2@").replace(b"with ESMTPS", b"with ESMTP"))
    run(make_job(imap))
    over_tls, in_clear = (_verdict(data)[1] for _, data in stored(mailboxes["jane"]))
    assert "RCVD_NO_TLS_LAST" not in over_tls
    assert "RCVD_NO_TLS_LAST" in in_clear


def test_a_received_line_naming_an_ip_the_spf_record_does_not_allow_fails_spf(
    pop3, remote, make_job, mailboxes
):
    remote.add(
        HAM.replace(
            b"mail.remote.test (mail.remote.test [1.2.3.4])", b"relay.other.test ([5.6.7.8])"
        )
    )
    run(make_job(pop3, protocol="pop3"))
    [(_, data)] = stored(mailboxes["jane"])
    results, tags = _verdict(data)
    assert "spf=fail smtp.mailfrom=sender@remote.test (fetched; judged client 5.6.7.8," in results
    assert "iprev=permerror policy.iprev=5.6.7.8" in results  # no PTR (RFC 8601 2.7.3)
    assert "dmarc=fail header.from=remote.test policy.dmarc=reject" in results
    assert "127.0.0.1" not in results
    assert {"SPF_FAIL", "DMARC_POLICY_REJECT", "RDNS_NONE"} <= tags


@pytest.mark.parametrize(
    "hops",
    [
        b"",  # no Received line at all
        b"Received: from mail.remote.test ([10.0.0.7]) by mx.provider.test with ESMTP id 1;\r\n"
        b"\tMon, 30 Nov 2026 10:00:01 +0000\r\n"
        b"Received: from localhost (localhost [127.0.0.1]) by mail.remote.test; x\r\n",
        b"Received: by mx.provider.test with HTTP; Mon, 30 Nov 2026 10:00:01 +0000\r\n"
        b"Received: from (garbage [999.1.2.3]) (" + b"x" * 5000 + b")\r\n",
    ],
    ids=["none", "private-and-loopback", "unparsable"],
)
def test_without_a_usable_received_line_spf_and_iprev_are_not_judged(
    imap, remote, make_job, mailboxes, hops
):
    received = HAM.split(b"Received: ", 1)[1].split(b"From: ", 1)[0]
    remote.add(HAM.replace(b"Received: " + received, hops))
    run(make_job(imap))
    [(_, data)] = stored(mailboxes["jane"])
    results, tags = _verdict(data)
    assert (
        "spf=none smtp.mailfrom=sender@remote.test (fetched; no client IP in its Received "
        "headers: SPF and iprev not judged)"
    ) in results
    assert "iprev=" not in results and "127.0.0.1" not in results
    # DMARC still runs: neither SPF nor DKIM passed for remote.test.
    assert "dmarc=fail header.from=remote.test" in results
    assert "SPF_NA" in tags and "DMARC_POLICY_REJECT" in tags
    assert not tags & {"SPF_FAIL", "RDNS_NONE", "RDNS_DNSFAIL", "HELO_IPREV_MISMATCH"}
    assert not tags & {"HELO_NORES_A_OR_MX", "HELO_BAREIP"}


def test_the_dns_block_lists_are_asked_about_the_judged_client(
    imap, remote, make_job, mailboxes, settings, dns_server
):
    settings.MAILADMIN_SPAM_DNSBL = "bl.test:RBL_TEST:0.5"
    dns_server.set_zone("4.3.2.1.bl.test", {"A": ["127.0.0.2"]})
    remote.add(HAM)
    run(make_job(imap))
    [(_, data)] = stored(mailboxes["jane"])
    assert "RBL_TEST" in _verdict(data)[1]
    asked = {name for name, _ in dns_server.queries}
    assert "4.3.2.1.bl.test" in asked and "1.0.0.127.bl.test" not in asked
    assert "1.0.0.127.in-addr.arpa" not in asked  # nor iprev about the IMAP server


def test_the_mailboxs_ip_lists_meet_the_judged_client_not_the_server_fetched_from(
    imap, remote, make_job, mailboxes
):
    jane = mailboxes["jane"]
    job = make_job(imap)
    # The IMAP server (loopback) is jane's own provider: blocking it blocks no sender.
    SenderListEntry.objects.create(
        mailbox=jane, tenant_id=jane.tenant_id, list="ipblacklist", value="127.0.0.0/8"
    )
    remote.add(HAM)
    run(job)
    assert [folder for folder, _ in stored(jane)] == ["INBOX"]
    # The client the provider's Received line names is the sender an IP entry is about.
    SenderListEntry.objects.create(
        mailbox=jane, tenant_id=jane.tenant_id, list="ipblacklist", value=f"{SENDER_IP}/32"
    )
    remote.add(HAM.replace(b"lunch-1@", b"lunch-2@"))
    run(job)
    assert len(stored(jane)) == 1
    assert FetchEntry.objects.order_by("id").last().reason == BLOCKED_SENDER
    # And its safe list: GTUBE from a safe-listed client still reaches the INBOX.
    SenderListEntry.objects.filter(mailbox=jane).delete()
    SenderListEntry.objects.create(
        mailbox=jane, tenant_id=jane.tenant_id, list="ipsafelist", value=SENDER_IP
    )
    remote.add(GTUBE)
    run(job)
    assert [folder for folder, _ in stored(jane)] == ["INBOX", "INBOX"]


def test_a_full_mailbox_is_tried_again_next_run(imap, remote, make_job, mailboxes):
    remote.add(HAM)
    jane = mailboxes["jane"]
    jane.quota = 10
    jane.save()
    job = make_job(imap, delete_on_server=True)
    assert run(job).message == ("0 message(s) fetched, 1 failed. 1 will be tried again.")
    assert FetchEntry.objects.get().reason == "452 4.2.2 Mailbox full (tried again next run)"
    assert remote.uids() == [1] and not FetchSeen.objects.exists()
    jane.quota = 0
    jane.save()
    assert run(job).message == "1 message(s) fetched, 0 failed."
    assert remote.uids() == []


def test_folder_names_travel_in_modified_utf7(imap, remote, make_job, mailboxes, admin_a):
    from tests.support.mail_servers import RemoteFolder

    remote.folders["Entw&APw-rfe"] = RemoteFolder()
    remote.add(HAM, folder="Entw&APw-rfe")
    job = make_job(imap, folders=["Entwürfe"])
    assert run(job).message == "1 message(s) fetched, 0 failed."
    assert FetchEntry.objects.get().remote_folder == "Entwürfe"
    validation = fetch_services.fetch_job_validate(actor=admin_a, job=job)
    assert validation.folders == ["INBOX", "Entwürfe"] and validation.ok


def test_a_big_folder_is_fetched_a_budget_at_a_time(imap, remote, make_job, mailboxes, settings):
    """150,000 UIDs make a UID SEARCH answer over imaplib's own 1,000,000-byte line limit;
    each run fetches MAILADMIN_FETCH_MAX_MESSAGES and leaves the next run due at once."""
    from tests.support.mail_servers import RemoteMessage

    settings.MAILADMIN_FETCH_MAX_MESSAGES = 2
    inbox = remote.folders["INBOX"]
    inbox.messages = [RemoteMessage(uid, HAM) for uid in range(1, 150_001)]
    inbox.uidnext = 150_001
    job = make_job(imap)
    outcome = run(job)
    assert outcome.message == (
        "2 message(s) fetched, 0 failed. More are waiting: the next run is due now."
    )
    assert job.next_run_at <= job.last_run_at
    sizes = [c for c in imap.commands if "RFC822.SIZE" in c]
    assert len(sizes) == 1 and " UID FETCH 1,2 (RFC822.SIZE)" in sizes[0]
    assert run(job).message.startswith("2 message(s) fetched")
    assert FetchSeen.objects.filter(job=job).count() == 4


def test_beat_skips_inactive_jobs_and_disabled_mailboxes(
    imap, make_job, mailboxes, django_capture_on_commit_callbacks
):
    job = make_job(imap, active=False)
    with django_capture_on_commit_callbacks(execute=False):
        assert fetch_due_task() == 0
    FetchJob.objects.filter(pk=job.pk).update(active=True)
    mailboxes["jane"].is_active = False
    mailboxes["jane"].save()
    with django_capture_on_commit_callbacks(execute=False):
        assert fetch_due_task() == 0
    run(job)  # "Fetch now" still runs, and says why nothing can be stored
    assert job.last_error == "The mailbox jane@example.test is disabled."


def test_pop3_oversized_message_is_not_retrieved(pop3, remote, make_job, mailboxes, settings):
    settings.MAILADMIN_MAX_MESSAGE_SIZE = 1000
    remote.add(HAM + b"x" * 2000 + b"\r\n")
    job = make_job(pop3, protocol="pop3", delete_on_server=True)
    assert run(job).message == "0 message(s) fetched, 1 failed."
    assert not [c for c in pop3.commands if c.startswith("RETR")]
    assert FetchEntry.objects.get().reason.startswith("Message size ")
    assert remote.uids() == [1]


def test_services_refuse_another_tenants_job_whoever_hands_it_in(imap, make_job, admin_b):
    from mailadmin.errors import NotFound

    job = make_job(imap)
    for call in (
        lambda: fetch_services.fetch_job_update(actor=admin_b, job=job, values=FetchValues()),
        lambda: fetch_services.fetch_job_delete(actor=admin_b, job=job),
        lambda: fetch_services.fetch_job_validate(actor=admin_b, job=job),
        lambda: fetch_services.fetch_job_run_start(actor=admin_b, job=job),
    ):
        with pytest.raises(NotFound):
            call()
    assert FetchJob.objects.filter(pk=job.pk).exists()


def test_a_server_that_is_not_there_is_the_jobs_error(make_job, mailboxes, admin_a):
    import socket

    with socket.socket() as probe:  # a port nobody listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    class Gone:
        mailbox = RemoteMailbox()

    Gone.port = port
    job = make_job(Gone)
    run(job)
    assert job.last_error == f"Connection to 127.0.0.1:{port} failed: Connection refused"
    assert job.last_status == "error"
    result = fetch_services.fetch_job_validate(actor=admin_a, job=job)
    assert result.message == job.last_error


LOST = (
    "This run lost its claim on the job (its lease lapsed and another run took the job "
    "over); it stopped."
)


def _take_over(job: FetchJob):
    """Another run claims the job, as it would once this run's lease lapsed."""
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    other = uuid.uuid4()
    FetchJob.objects.filter(pk=job.pk).update(
        claim_id=other, lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    return other


def _until(condition, timeout: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_a_run_that_lost_its_claim_fetches_no_further_folder(
    imap, remote, make_job, mailboxes, monkeypatch
):
    remote.add(HAM)
    remote.add(HAM.replace(b"lunch-1@", b"lunch-2@"), folder="Archive")
    job = make_job(imap, folders=["INBOX", "Archive"], delete_on_server=True)
    original, others = fetch._fetch_imap_folder, []

    def taken_over_after_one(job, *args):
        original(job, *args)
        others.append(_take_over(job))

    monkeypatch.setattr(fetch, "_fetch_imap_folder", taken_over_after_one)
    outcome = run(job)
    assert not outcome.ok
    assert outcome.message == f"{LOST} (1 message(s) fetched, 0 failed.)"
    assert not any('"Archive"' in command for command in imap.commands)
    assert remote.uids("Archive") == [1]  # neither fetched nor deleted beside the other run
    assert [data for _, data in stored(mailboxes["jane"])][0].endswith(HAM)
    assert Message.objects.count() == 1
    # The job's row is the other run's: its claim and lease stand, no outcome of ours.
    assert job.claim_id == others[0] and job.lease_expires_at is not None
    assert (job.last_run_at, job.last_error) == (None, "")


def test_a_run_that_lost_its_claim_while_scanning_a_message_does_not_store_it(
    imap, remote, make_job, mailboxes, monkeypatch
):
    remote.add(HAM)
    job = make_job(imap, delete_on_server=True)
    original, others = fetch.scan_inbound, []

    def taken_over_while_scanning(job_, *args, **kwargs):
        verdict = original(job_, *args, **kwargs)
        others.append(_take_over(job))
        return verdict

    monkeypatch.setattr(fetch, "scan_inbound", taken_over_while_scanning)
    outcome = run(job)
    assert (outcome.ok, outcome.message) == (False, f"{LOST} (0 message(s) fetched, 0 failed.)")
    assert Message.objects.count() == 0 and not FetchSeen.objects.exists()
    assert not FetchEntry.objects.exists()
    assert remote.uids() == [1]
    assert job.claim_id == others[0] and job.last_run_at is None


@pytest.mark.django_db(transaction=True)  # the heartbeat thread has a connection of its own
def test_the_heartbeat_renews_the_lease_through_a_slow_step_and_stops_a_run_taken_over(
    imap, remote, make_job, mailboxes, monkeypatch
):
    import threading
    from datetime import timedelta

    from django.utils import timezone

    remote.add(HAM)
    job = make_job(imap)
    monkeypatch.setattr(fetch, "RENEW_SECONDS", 0.05)
    original, seen = fetch._fetch_imap_folder, {}

    def slow(job, session, folder, result, claim, budget):
        # A step far longer than RENEW_SECONDS (a big folder's SEARCH, say): the heartbeat
        # keeps the lease on while it lasts.
        FetchJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now())
        seen["renewed"] = _until(
            lambda: (
                FetchJob.objects.get(pk=job.pk).lease_expires_at
                > timezone.now() + timedelta(minutes=4)
            )
        )
        seen["other"] = _take_over(job)
        seen["flagged"] = _until(lambda: claim.lost)
        original(job, session, folder, result, claim, budget)

    monkeypatch.setattr(fetch, "_fetch_imap_folder", slow)
    outcome = run(job)
    assert seen["renewed"] and seen["flagged"]
    assert (outcome.ok, outcome.message) == (False, f"{LOST} (0 message(s) fetched, 0 failed.)")
    assert Message.objects.count() == 0 and remote.uids() == [1]
    assert job.claim_id == seen["other"] and job.last_run_at is None
    assert not [t for t in threading.enumerate() if t.name.startswith("fetch-lease-")]


def _read_only_heartbeat(sender, connection, **kwargs) -> None:
    """connection_created: the heartbeat thread's own connection refuses writes, as a
    session on a replica that failover left read-only would (the run's thread writes on)."""
    import threading

    if not threading.current_thread().name.startswith("fetch-lease-"):
        return
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA query_only = ON")
        else:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")


@pytest.mark.django_db(transaction=True)  # the heartbeat thread has a connection of its own
def test_a_run_whose_heartbeat_cannot_renew_for_a_whole_lease_stops(
    imap, remote, make_job, mailboxes, monkeypatch, caplog
):
    import logging
    import threading
    from datetime import timedelta

    from django.db.backends.signals import connection_created

    remote.add(HAM)
    job = make_job(imap, delete_on_server=True)
    lease = timedelta(seconds=1)  # renewed every quarter of it
    original, seen = fetch._fetch_imap_folder, {}

    def failed_renewals() -> int:
        return sum(
            r.getMessage() == f"fetch job {job.uuid}: renewing the lease failed"
            for r in caplog.records
        )

    def slow(job, session, folder, result, claim, budget):
        # Five failed renewals a quarter-lease apart: a whole lease without one.
        seen["failed"] = _until(lambda: failed_renewals() >= 5)
        seen["lost"] = claim.lost  # not taken over: nobody else holds the job
        original(job, session, folder, result, claim, budget)

    monkeypatch.setattr(fetch, "_fetch_imap_folder", slow)
    connection_created.connect(_read_only_heartbeat)
    try:
        with caplog.at_level(logging.WARNING, logger=fetch.log.name):
            outcome = fetch.run_job(job.pk, progress=Steps(), lease=lease)
    finally:
        connection_created.disconnect(_read_only_heartbeat)
    job.refresh_from_db()
    assert seen == {"failed": True, "lost": False}
    error, _, counts = outcome.message.partition(" s (another run")
    assert error.startswith("This run could not renew its claim on the job for ")
    assert float(error.rsplit(" ", 1)[1]) >= lease.total_seconds()
    assert counts == " may hold the job now); it stopped. (0 message(s) fetched, 0 failed.)"
    assert not outcome.ok
    # Neither stored nor deleted on the server: another run may be fetching it.
    assert Message.objects.count() == 0 and remote.uids() == [1]
    # Nobody took the job over, so the run's own outcome is recorded and the job released.
    assert (job.last_status, job.claim_id, job.lease_expires_at) == ("error", None, None)
    assert job.last_error == outcome.message.split(" (0 message")[0]
    assert not [t for t in threading.enumerate() if t.name.startswith("fetch-lease-")]


@pytest.mark.django_db(transaction=True)
def test_a_run_ends_its_heartbeat_and_releases_the_job(imap, remote, make_job, mailboxes):
    import threading

    remote.add(HAM)
    job = make_job(imap)
    outcome = run(job)
    assert outcome.ok, outcome.message
    assert (job.claim_id, job.lease_expires_at, job.last_status) == (None, None, "success")
    assert not [t for t in threading.enumerate() if t.name.startswith("fetch-lease-")]


def test_a_run_under_way_keeps_a_short_lease(imap, remote, make_job, monkeypatch):
    from django.utils import timezone

    remote.add(HAM)
    job = make_job(imap)
    leases = []
    original = fetch._fetch

    def watching(job, result, progress):
        leases.append(FetchJob.objects.get(pk=job.pk).lease_expires_at - timezone.now())
        original(job, result, progress)

    monkeypatch.setattr(fetch, "_fetch", watching)
    run(job)
    assert 0 < leases[0].total_seconds() <= fetch_services.FETCH_LEASE_SECONDS
    assert Message.objects.count() == 1


def test_a_nul_in_the_subject_message_id_or_return_path_does_not_stop_the_fetch(
    imap, remote, make_job, mailboxes
):
    """PostgreSQL refuses NUL in text: the monitoring entry's copy of these fields failed
    to save, the message was deferred as a temporary error and fetched again every run,
    for ever (the entry of that failure failed the same way)."""
    odd = HAM.replace(b"Subject: Lunch", b"Subject: Lu\x00nch")
    odd = odd.replace(b"Return-Path: <sender@", b"Return-Path: <sen\x00der@")
    remote.add(odd.replace(b"<lunch-1@", b"<lu\x00nch-1@"))
    job = make_job(imap)
    assert run(job).message == "1 message(s) fetched, 0 failed."
    entry = FetchEntry.objects.get()
    assert (entry.status, entry.subject) == ("success", "Lu nch on Thursday")
    assert "\x00" not in entry.message_id + entry.sender
    assert len(stored(mailboxes["jane"])) == 1


def test_a_message_the_scan_fails_on_is_held_not_fetched_again_every_run(
    imap, remote, make_job, mailboxes, monkeypatch
):
    from apps.spamfilter import checks

    def broken(context):
        raise ValueError("a check tripped over this message")

    monkeypatch.setattr(checks, "run_checks", broken)
    remote.add(HAM)
    job = make_job(imap)
    assert run(job).message == "1 message(s) fetched, 0 failed."
    assert QuarantinedMessage.objects.get().mailbox == mailboxes["jane"]
    assert FetchEntry.objects.get().reason.startswith("Held in the quarantine")
    assert run(job).message == "0 message(s) fetched, 0 failed."
