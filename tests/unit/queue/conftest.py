"""Queue tests: a loopback DNS server whose MX records point at the loopback SMTP sink."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from apps.accounts.models import Principal, PrincipalType
from apps.queue import delivery, remote, tls_policy
from tests.support.mail_servers import ImapServer, Pop3Server, RemoteMailbox

REMOTE = "remote.test"


@pytest.fixture(autouse=True)
def _fresh_pool_and_blobs(settings, tmp_path):
    settings.MAILADMIN_BLOB_DIR = str(tmp_path / "blobs")
    settings.MAILADMIN_HOSTNAME = "mail.mailadmin.test"
    remote.clear_mx_cache()
    remote.pool.close_all()
    delivery.clear_hosted_cache()
    tls_policy.clear_caches()
    yield
    remote.pool.close_all()
    remote.clear_mx_cache()
    tls_policy.clear_caches()


@pytest.fixture
def mx(dns_server, smtp_sink, settings):
    """remote.test's MX is the sink: DNS on loopback, MAILADMIN_SMTP_REMOTE_PORT its port."""
    dns_server.set_zone(REMOTE, {"MX": [(10, "mx.remote.test.")]})
    dns_server.set_zone("mx.remote.test", {"A": ["127.0.0.1"]})
    settings.MAILADMIN_SMTP_REMOTE_PORT = smtp_sink.port
    return smtp_sink


def message(subject: str = "Hello", body: str = "Hi there.") -> bytes:
    return (
        f"From: Sender <sender@origin.test>\r\nTo: rcpt@{REMOTE}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@origin.test>\r\n\r\n{body}\r\n"
    ).encode()


# The inbound MX on loopback, and two hosted mailboxes (jane, joe @example.test) with a
# remote sender domain whose SPF allows only loopback and whose DMARC says reject: the
# SMTP tests of filtering, sender lists and the quarantine share them.
@pytest.fixture
def inbound(start_listeners):
    return start_listeners("inbound")


@pytest.fixture
def mailboxes(make_principal, tenant_a, dns_server):
    Principal.objects.create(name="example.test", type=PrincipalType.DOMAIN, tenant=tenant_a)
    found = {}
    for name in ("jane", "joe"):
        principal = make_principal(name=name, tenant=tenant_a)
        principal.emails.create(address=f"{name}@example.test")
        found[name] = principal
    dns_server.set_zone("remote.test", {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]})
    dns_server.set_zone("_dmarc.remote.test", {"TXT": ["v=DMARC1; p=reject"]})
    return found


# A remote mailbox served over IMAP and POP3 on loopback, for the fetch jobs' tests.
@pytest.fixture(name="remote")  # named apart: `remote` is also the SMTP client module here
def remote_mailbox() -> RemoteMailbox:
    return RemoteMailbox()


@pytest.fixture
def imap(remote):
    server = ImapServer(remote).start()
    yield server
    server.stop()


@pytest.fixture
def pop3(remote):
    server = Pop3Server(remote).start()
    yield server
    server.stop()


@contextlib.contextmanager
def queue_writes_held() -> Iterator[None]:
    """Another connection holds back every insert into the queue until the block ends (an
    open write transaction on SQLite, a SHARE lock on the message table on PostgreSQL): a
    commit in flight that stays in flight as long as a test needs."""
    from django.db import connection, connections, transaction

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute("LOCK TABLE queue_queuedmessage IN SHARE MODE")
                else:  # takes SQLite's write lock
                    cursor.execute("UPDATE queue_queuedmessage SET status = status WHERE 0")
                held.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join(10)
