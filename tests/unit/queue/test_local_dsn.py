"""A failure DSN for a sender hosted here lands in the sender's INBOX (through the store),
naming the recipient and the remote server's answer."""

from __future__ import annotations

import pytest

from apps.queue import delivery
from apps.queue.models import QueuedMessage, QueueDomain
from apps.queue.services import enqueue
from tests.unit.queue.conftest import message

pytestmark = pytest.mark.django_db


@pytest.fixture
def sender_mailbox(make_principal, tenant_a):
    from apps.accounts.models import PrincipalEmail

    make_principal(tenant=tenant_a, roles=(), name="origin.test", type="domain", password="")
    jane = make_principal(tenant=tenant_a, roles=(), name="jane", password="")
    PrincipalEmail.objects.create(principal=jane, address="jane@origin.test")
    return jane


def test_a_550_puts_a_failure_dsn_in_the_local_senders_inbox(mx, sender_mailbox, tenant_a):
    from apps.store import blobs
    from apps.store.models import Message

    mx.handler.rcpt_replies["gone@remote.test"] = "550 5.1.1 <gone@remote.test>: no such user"
    queued = enqueue(
        return_path="jane@origin.test",
        recipients=["gone@remote.test"],
        data=message("Figures"),
        tenant_id=tenant_a.pk,
    )
    delivery.deliver(QueueDomain.objects.get(message=queued).pk, drain=False)
    bounce = QueuedMessage.objects.exclude(pk=queued.pk).get()
    entry = QueueDomain.objects.get(message=bounce)
    assert (bounce.return_path, entry.name) == ("", "origin.test")
    delivery.deliver(entry.pk, drain=False)
    entry.refresh_from_db()
    assert entry.status == "delivered"
    assert mx.messages == []  # delivered locally, never over SMTP

    stored = Message.objects.get(principal=sender_mailbox)
    assert stored.folder.name == "INBOX"
    assert stored.subject == "Undelivered Mail Returned to Sender"
    text = blobs.read(stored.blob_hash).decode()
    assert "Final-Recipient: rfc822; gone@remote.test" in text
    assert "Diagnostic-Code: smtp; 550 5.1.1 <gone@remote.test>: no such user" in text


def test_local_delivery_to_an_unknown_mailbox_fails_at_once(sender_mailbox):
    queued = enqueue(return_path="", recipients=["nobody@origin.test"], data=message())
    delivery.deliver(QueueDomain.objects.get(message=queued).pk, drain=False)
    rcpt = queued.recipients.get()
    assert (rcpt.status, rcpt.code) == ("failed", 550)
    assert rcpt.response == "550 5.1.1 <nobody@origin.test>: Recipient address rejected"


def test_a_full_local_mailbox_is_tried_again_later(sender_mailbox):
    sender_mailbox.quota = 10  # bytes: nothing fits
    sender_mailbox.save()
    queued = enqueue(return_path="", recipients=["jane@origin.test"], data=message())
    delivery.deliver(QueueDomain.objects.get(message=queued).pk, drain=False)
    rcpt = queued.recipients.get()
    assert (rcpt.status, rcpt.code) == ("scheduled", 452)
    assert rcpt.response == "452 4.2.2 <jane@origin.test>: Mailbox full"
    assert QueueDomain.objects.get(message=queued).retry_num == 1
