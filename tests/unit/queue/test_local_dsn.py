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


def test_a_queued_message_to_a_hosted_list_names_a_full_member_and_forwards_the_external(
    mx, sender_mailbox, make_principal, tenant_a
):
    """Mail a local account submitted to a hosted list: the member with room gets it, the
    full one is named in a failure DSN in the sender's INBOX, the external member gets a
    copy over SMTP (the hosted sender's own return path: no SRS needed for it)."""
    from apps.accounts.models import Principal, PrincipalEmail, PrincipalType
    from apps.store import blobs
    from apps.store.models import Message

    full = make_principal(tenant=tenant_a, roles=(), name="full", password="", quota=10)
    PrincipalEmail.objects.create(principal=full, address="full@origin.test")
    room = make_principal(tenant=tenant_a, roles=(), name="room", password="")
    PrincipalEmail.objects.create(principal=room, address="room@origin.test")
    team = Principal.objects.create(
        name="team", type=PrincipalType.LIST, tenant=tenant_a, external_members=["x@remote.test"]
    )
    PrincipalEmail.objects.create(principal=team, address="team@origin.test")
    full.member_of.add(team)
    room.member_of.add(team)
    queued = enqueue(
        return_path="jane@origin.test",
        recipients=["team@origin.test"],
        data=message("Plans"),
        tenant_id=tenant_a.pk,
    )
    delivery.deliver(QueueDomain.objects.get(message=queued).pk, drain=False)
    rcpt = queued.recipients.get()
    assert (rcpt.status, rcpt.code) == ("delivered", 250)
    assert Message.objects.filter(principal=room).count() == 1
    assert not Message.objects.filter(principal=full).exists()

    forward = QueuedMessage.objects.get(recipients__address="x@remote.test")
    assert forward.return_path == "jane@origin.test"
    bounce = QueuedMessage.objects.get(return_path="", recipients__address="jane@origin.test")
    for entry in QueueDomain.objects.filter(message__in=[forward, bounce]):
        delivery.deliver(entry.pk, drain=False)
    assert mx.wait_for(1)[0].rcpt_tos == ["x@remote.test"]
    [dsn] = Message.objects.filter(principal=sender_mailbox)
    text = blobs.read(dsn.blob_hash).decode()
    assert "Final-Recipient: rfc822; full@origin.test\r\n" in text
    assert "Original-Recipient: rfc822; team@origin.test\r\n" in text
    assert "Status: 5.2.2\r\n" in text
    assert "room@origin.test" not in text


def test_a_dsn_for_a_sender_who_encrypts_at_rest_is_stored_encrypted(mx, sender_mailbox, tenant_a):
    from apps.accounts.auth.encryption import encryption_settings_update
    from apps.accounts.principals.services import builtin_role
    from apps.store import blobs
    from apps.store.models import Message
    from tests.support.at_rest import pem, smime_decrypt, smime_identity

    certificate, private = smime_identity()
    sender_mailbox.roles.add(builtin_role("user"))
    encryption_settings_update(
        actor=sender_mailbox, type="smime", algo="Aes256", certs=pem(certificate)
    )
    mx.handler.rcpt_replies["gone@remote.test"] = "550 5.1.1 <gone@remote.test>: no such user"
    queued = enqueue(
        return_path="jane@origin.test",
        recipients=["gone@remote.test"],
        data=message("Figures"),
        tenant_id=tenant_a.pk,
    )
    delivery.deliver(QueueDomain.objects.get(message=queued).pk, drain=False)
    bounce = QueuedMessage.objects.exclude(pk=queued.pk).get()
    delivery.deliver(QueueDomain.objects.get(message=bounce).pk, drain=False)

    stored = Message.objects.get(principal=sender_mailbox)
    assert stored.subject == "Undelivered Mail Returned to Sender"
    data = blobs.read(stored.blob_hash)
    assert b"Final-Recipient" not in data and b"smime-type=enveloped-data" in data
    inner = smime_decrypt(data, certificate, private)
    assert inner.startswith(
        b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status"
    )
    assert b"Final-Recipient: rfc822; gone@remote.test" in inner


def test_a_forward_of_another_tenants_mailbox_is_that_tenants_queued_message(
    sender_mailbox, make_principal, tenant_a, tenant_b, api_client_for
):
    """Tenant A's jane mails tenant B's bob, who forwards to a private address and whose
    list has an external member: those copies are B's (B's configuration, B's mail, as
    on the MX path), never in A's queue where A's admin would read where B's mail goes."""
    from apps.accounts.models import Principal, PrincipalEmail, PrincipalType
    from apps.domains.models import MailboxProfile

    domain = make_principal(tenant=tenant_b, roles=(), name="b.test", type="domain", password="")
    bob = make_principal(tenant=tenant_b, roles=(), name="bob", password="")
    PrincipalEmail.objects.create(principal=bob, address="bob@b.test")
    MailboxProfile.objects.create(
        principal=bob,
        domain=domain,
        tenant=tenant_b,
        name="bob",
        display_name="Bob",
        forwarding_address="bob.private@remote.test",
    )
    crew = Principal.objects.create(
        name="crew", type=PrincipalType.LIST, tenant=tenant_b, external_members=["x@remote.test"]
    )
    PrincipalEmail.objects.create(principal=crew, address="crew@b.test")
    queued = enqueue(
        return_path="jane@origin.test",
        recipients=["bob@b.test", "crew@b.test"],
        data=message("Plans"),
        tenant_id=tenant_a.pk,
    )
    delivery.deliver(QueueDomain.objects.get(message=queued).pk, drain=False)
    forwards = QueuedMessage.objects.exclude(pk=queued.pk)
    assert sorted(forwards.values_list("recipients__address", "tenant_id")) == [
        ("bob.private@remote.test", tenant_b.pk),
        ("x@remote.test", tenant_b.pk),
    ]
    seen_by_a = api_client_for(
        make_principal(name="admin-a", tenant=tenant_a, roles=["tenant-admin"])
    )
    text = seen_by_a.get("/api/queue/messages").content.decode()
    assert "bob.private@remote.test" not in text and "x@remote.test" not in text
