"""Fetch jobs end to end: "Fetch now" in the console wakes a real worker process, which
fetches from the loopback IMAP server into the store (spam filter headers on top) and
deletes on the server; a second run finds nothing new. PostgreSQL, Redis, a real worker."""

from __future__ import annotations

import pytest

from apps.accounts.models import Principal, PrincipalEmail, PrincipalType
from apps.queue import fetch_services
from apps.queue.fetch_services import FetchValues
from apps.queue.models import FetchEntry, FetchJob
from apps.store import blobs
from apps.store.models import Message
from mailadmin.core.models import TaskRun
from tests.integration.test_task_recovery import wait_for
from tests.support.mail_servers import ImapServer, RemoteMailbox
from tests.support.worker import Worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MESSAGE = (
    b"Return-Path: <sender@remote.test>\r\nFrom: Sender <sender@remote.test>\r\n"
    b"To: jane@example.test\r\nSubject: Fetched by a worker\r\n"
    b"Message-ID: <worker-1@remote.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"\r\nShall we meet at noon at the usual place? Bring the notes from Monday.\r\n"
)


def test_fetch_now_runs_in_a_worker_and_stores_the_mail(
    client, admin_a, make_principal, tenant_a, dns_server, settings
):
    Principal.objects.create(name="example.test", type=PrincipalType.DOMAIN, tenant=tenant_a)
    jane = make_principal(name="jane", tenant=tenant_a)
    PrincipalEmail.objects.create(principal=jane, address="jane@example.test")
    dns_server.set_zone("remote.test", {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]})
    dns_server.set_zone("_dmarc.remote.test", {"TXT": ["v=DMARC1; p=reject"]})
    remote = RemoteMailbox()
    remote.add(MESSAGE)
    server = ImapServer(remote).start()
    job = fetch_services.fetch_job_create(
        actor=admin_a,
        values=FetchValues(mailbox="jane@example.test", protocol="imap", host="127.0.0.1",
                           port=server.port, security="none", username=remote.username,
                           password=remote.password, delete_on_server=True),
    )  # fmt: skip
    worker = Worker(
        {
            "MAILADMIN_DNS_NAMESERVERS": dns_server.address,
            "MAILADMIN_BLOB_DIR": str(settings.MAILADMIN_BLOB_DIR),
            "MAILADMIN_HOSTNAME": "mail.example.test",
        }
    ).start()
    try:
        client.force_login(admin_a)
        for expected in ("1 message(s) fetched, 0 failed.", "0 message(s) fetched, 0 failed."):
            assert client.post(f"/queue/fetch/{job.uuid}/run/").status_code == 302
            run = TaskRun.objects.order_by("-created_at").first()
            wait_for(
                lambda run=run: TaskRun.objects.get(pk=run.pk).finished,
                timeout=60,
                what="the worker to finish the fetch run",
                worker=worker,
            )
            run.refresh_from_db()
            assert (run.state, run.message) == ("success", expected)
    finally:
        worker.stop()
        server.stop()
    [stored] = Message.objects.filter(principal=jane)
    data = blobs.read(stored.blob_hash)
    assert data.endswith(MESSAGE)
    assert stored.folder.name == "INBOX", data.split(b"\r\n\r\n")[0].decode()
    assert b"X-Spam-Status: No" in data and b"with IMAP id " in data
    assert remote.uids() == []
    job = FetchJob.objects.get(pk=job.pk)
    assert (job.last_status, job.claim_id) == ("success", None)
    assert FetchEntry.objects.get().reason == "Stored in INBOX."
