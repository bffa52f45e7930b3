"""A domain quarantine's digest goes to the owner the mailbox's spam settings name when
it is sent: a changed owner (someone who left, a mistyped address) no longer gets the
items held before the change and not yet digested."""

from __future__ import annotations

import pytest

from apps.queue.models import QueuedMessage
from apps.spamfilter import quarantine, sender_lists
from apps.spamfilter.models import MailboxSpamSetting
from apps.spamfilter.tasks import quarantine_digest_task
from apps.store import blobs
from apps.store.models import Message
from tests.unit.spamfilter import test_quarantine
from tests.unit.spamfilter.test_quarantine import _run, hold

jane, mailbox = test_quarantine.jane, test_quarantine.mailbox  # its fixtures
pytestmark = pytest.mark.django_db


def _domain_quarantine(jane, owner: str) -> None:
    MailboxSpamSetting.objects.create(
        mailbox=jane, tenant_id=jane.tenant_id, send_to_domain_quarantine=True,
        quarantine_owner=owner,
    )  # fmt: skip


def test_a_new_owner_gets_the_items_not_yet_digested(
    admin_a, jane, mailbox, tenant_a, django_capture_on_commit_callbacks
):
    boss = mailbox("boss", tenant_a)
    _domain_quarantine(jane, "former.admin@gmail.example")
    digested = hold(jane, "Digested before")
    digested.digested_at = digested.received_at
    digested.save(update_fields=["digested_at"])
    pending = hold(jane, "Held before the change")
    raw = {"filterlevel": "on", "sendtodomainquarantine": True}
    sender_lists.setting_update(
        actor=admin_a, mailbox=jane, raw={**raw, "quarantineowner": "boss@example.test"}
    )
    pending.refresh_from_db()
    digested.refresh_from_db()
    assert (pending.owner, digested.owner) == ("boss@example.test", "former.admin@gmail.example")
    _run(quarantine_digest_task, quarantine.DIGEST_TASK, django_capture_on_commit_callbacks)
    assert not QueuedMessage.objects.exists()  # nothing to the former owner
    [digest] = Message.objects.filter(principal=boss)
    assert b"Held before the change" in blobs.read(digest.blob_hash)


def test_no_owner_named_falls_back_to_the_domains_postmaster(admin_a, jane):
    _domain_quarantine(jane, "former.admin@gmail.example")
    pending = hold(jane)
    sender_lists.setting_update(
        actor=admin_a, mailbox=jane,
        raw={"filterlevel": "on", "sendtodomainquarantine": True, "quarantineowner": ""},
    )  # fmt: skip
    pending.refresh_from_db()
    assert pending.owner == "postmaster@example.test"


def test_another_mailboxs_items_and_mailbox_quarantines_keep_their_owner(
    admin_a, jane, mailbox, tenant_a
):
    joe = mailbox("joe", tenant_a)
    _domain_quarantine(joe, "someone@example.test")
    _domain_quarantine(jane, "someone@example.test")
    joes = hold(joe)
    MailboxSpamSetting.objects.filter(mailbox=jane).update(send_to_domain_quarantine=False)
    janes_own = hold(jane)
    sender_lists.setting_update(
        actor=admin_a, mailbox=jane,
        raw={"filterlevel": "on", "quarantineowner": "boss@example.test"},
    )  # fmt: skip
    joes.refresh_from_db()
    janes_own.refresh_from_db()
    assert (joes.owner, janes_own.owner) == ("someone@example.test", "jane@example.test")
