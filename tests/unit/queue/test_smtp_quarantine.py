"""The quarantine in the inbound MX path, over real sockets: a message whose verdict is
"quarantine" is held (not stored in Junk) with its score, tags and envelope, in the
mailbox's quarantine or its domain's; released from the console it lands in the INBOX
with the folder's next UID and trains the account's Bayes model as ham."""

from __future__ import annotations

import pytest

from apps.accounts.models import Principal
from apps.spamfilter import bayes
from apps.spamfilter.models import MailboxSpamSetting, QuarantinedMessage, SenderListEntry
from apps.store import blobs
from apps.store.models import Message
from tests.support.smtp_listeners import connect
from tests.unit.queue.test_smtp_filtering import HAM

pytestmark = pytest.mark.django_db(transaction=True)

# No Date, Message-ID, To, MIME-Version or display name.
BARE = b"From: sender@remote.test\r\nSubject: cheap watches\r\n\r\nHello Jane.\r\n"


@pytest.fixture(autouse=True)
def _thresholds(settings, tmp_path):
    settings.MAILADMIN_BLOB_DIR = tmp_path / "blobs"
    settings.MAILADMIN_SPAM_THRESHOLD_QUARANTINE = 6.0  # BARE scores 8.7 here, HAM 3.2
    settings.MAILADMIN_SPAM_THRESHOLD_SPAM = 5.0


def _send(inbound, recipients, message=BARE, sender="sender@remote.test"):
    with connect(inbound) as client:
        client.mail(sender)
        for rcpt in recipients:
            assert client.rcpt(rcpt)[0] == 250
        return client.data(message)


def test_a_message_over_the_quarantine_threshold_is_held_not_junked(inbound, mailboxes):
    code, _ = _send(inbound, ["jane@example.test"])
    assert code == 250
    assert not Message.objects.exists()  # neither INBOX nor Junk
    [held] = QuarantinedMessage.objects.all()
    assert (held.kind, held.mailbox, held.tenant_id) == (
        "mailbox",
        mailboxes["jane"],
        mailboxes["jane"].tenant_id,
    )
    assert (held.recipient, held.owner, held.domain) == (
        "jane@example.test",
        "jane@example.test",
        "example.test",
    )
    assert (held.sender, held.from_address, held.subject) == (
        "sender@remote.test",
        "sender@remote.test",
        "cheap watches",
    )
    assert held.score >= 6.0
    assert {"MISSING_DATE", "MISSING_MID"} <= set(held.tags)
    assert any("quarantine threshold" in reason for reason in held.reasons)
    data = blobs.read(held.blob_hash)
    assert held.size == len(data)
    assert data.endswith(BARE)
    assert b"X-Spam-Status: Yes" in data and b"Authentication-Results: " in data


def test_a_clean_message_is_not_held(inbound, mailboxes):
    code, _ = _send(inbound, ["jane@example.test"], HAM)
    assert code == 250
    assert not QuarantinedMessage.objects.exists()
    assert Message.objects.get().folder.name == "INBOX"


def test_a_mailbox_sending_to_the_domain_quarantine_is_held_there(inbound, mailboxes):
    MailboxSpamSetting.objects.create(
        mailbox=mailboxes["jane"],
        tenant_id=mailboxes["jane"].tenant_id,
        send_to_domain_quarantine=True,
        quarantine_owner="boss@example.test",
    )
    code, _ = _send(inbound, ["jane@example.test", "joe@example.test"])
    assert code == 250
    by_mailbox = {q.mailbox.name: q for q in QuarantinedMessage.objects.select_related("mailbox")}
    assert (by_mailbox["jane"].kind, by_mailbox["jane"].owner) == ("domain", "boss@example.test")
    assert (by_mailbox["joe"].kind, by_mailbox["joe"].owner) == ("mailbox", "joe@example.test")
    assert by_mailbox["jane"].blob_hash == by_mailbox["joe"].blob_hash  # the bytes once


def test_a_safelisting_recipient_gets_it_while_the_other_copy_is_held(inbound, mailboxes):
    SenderListEntry.objects.create(
        mailbox=mailboxes["jane"],
        tenant_id=mailboxes["jane"].tenant_id,
        list="safelist",
        value="remote.test",
    )
    code, _ = _send(inbound, ["jane@example.test", "joe@example.test"])
    assert code == 250
    assert Message.objects.get(principal=mailboxes["jane"]).folder.name == "INBOX"
    assert QuarantinedMessage.objects.get().mailbox == mailboxes["joe"]


def test_a_released_message_lands_in_the_inbox_with_the_next_uid(
    inbound, mailboxes, client, make_principal, tenant_a
):
    assert _send(inbound, ["jane@example.test"], HAM)[0] == 250  # UID 1 in INBOX
    assert _send(inbound, ["jane@example.test"])[0] == 250
    held = QuarantinedMessage.objects.get()
    scope = bayes.account_scope(mailboxes["jane"].pk)
    _, ham_before = bayes.learned(scope)
    client.force_login(make_principal(name="admin-a", tenant=tenant_a, roles=["tenant-admin"]))
    response = client.post(f"/spam-filter/quarantine/{held.pk}/release/")
    assert response.status_code == 302
    assert not QuarantinedMessage.objects.exists()
    inbox = Message.objects.filter(principal=mailboxes["jane"], folder__name="INBOX")
    assert list(inbox.order_by("uid").values_list("uid", "subject")) == [
        (1, "Lunch on Thursday"),
        (2, "cheap watches"),
    ]
    assert inbox.get(uid=2).blob_hash == held.blob_hash
    assert bayes.learned(scope)[1] == ham_before + 1


def test_the_mx_uses_a_threshold_set_in_the_settings_store(
    inbound, mailboxes, settings, superadmin
):
    from apps.config import services as settings_services

    settings.MAILADMIN_SPAM_THRESHOLD_QUARANTINE = 0.0  # off in the environment
    settings_services.settings_update(
        actor=superadmin,
        changes=[settings_services.Insert(values=[("spam-filter.threshold.quarantine", "6")])],
    )
    assert _send(inbound, ["jane@example.test"])[0] == 250
    [held] = QuarantinedMessage.objects.all()
    assert any("quarantine threshold 6" in reason for reason in held.reasons)
    assert not Message.objects.exists()
    # Back to the environment's (off): the next copy goes to Junk, not the quarantine.
    settings_services.settings_update(
        actor=superadmin,
        changes=[settings_services.Delete(keys=["spam-filter.threshold.quarantine"])],
    )
    assert _send(inbound, ["jane@example.test"])[0] == 250
    assert QuarantinedMessage.objects.count() == 1
    [junked] = Message.objects.all()
    assert junked.folder.name == "Junk"


def test_a_held_message_is_not_forwarded_and_a_clean_one_is(inbound, mailboxes):
    from apps.domains.models import MailboxProfile
    from apps.queue.models import QueuedMessage

    jane = mailboxes["jane"]
    MailboxProfile.objects.create(
        principal=jane,
        domain=Principal.objects.get(name="example.test"),
        tenant_id=jane.tenant_id,
        name="jane",
        display_name="Jane",
        forwarding_address="jane@home.example",
    )
    assert _send(inbound, ["jane@example.test"])[0] == 250
    assert QuarantinedMessage.objects.count() == 1
    assert not QueuedMessage.objects.exists()  # held here, not relayed
    assert _send(inbound, ["jane@example.test"], HAM)[0] == 250
    [queued] = QueuedMessage.objects.all()
    assert list(queued.recipients.values_list("address", flat=True)) == ["jane@home.example"]


def _forwarding_profile(mailboxes, name, forward):
    from apps.domains.models import MailboxProfile

    MailboxProfile.objects.create(
        principal=mailboxes[name],
        domain=Principal.objects.get(name="example.test"),
        tenant_id=mailboxes[name].tenant_id,
        name=name,
        display_name=name.title(),
        forwarding_address=forward,
    )


def test_a_safelisting_recipients_forward_still_goes_out(inbound, mailboxes, settings):
    from apps.queue.models import QueuedMessage

    settings.MAILADMIN_SPAM_THRESHOLD_REJECT = 7.0  # BARE (8.7) is refused but for jane
    _forwarding_profile(mailboxes, "jane", "jane@home.example")
    _forwarding_profile(mailboxes, "joe", "joe@home.example")
    SenderListEntry.objects.create(
        mailbox=mailboxes["jane"],
        tenant_id=mailboxes["jane"].tenant_id,
        list="safelist",
        value="remote.test",
    )
    assert _send(inbound, ["jane@example.test", "joe@example.test"])[0] == 250
    [queued] = QueuedMessage.objects.all()  # jane's forward, not joe's (held)
    assert list(queued.recipients.values_list("address", flat=True)) == ["jane@home.example"]
    assert QuarantinedMessage.objects.get().mailbox == mailboxes["joe"]


def test_a_held_message_for_a_list_of_outsiders_is_refused_not_lost(inbound, mailboxes, tenant_a):
    from apps.accounts.models import PrincipalType
    from apps.queue.models import QueuedMessage

    team = Principal.objects.create(
        name="team", type=PrincipalType.LIST, tenant=tenant_a, external_members=["x@far.test"]
    )
    team.emails.create(address="team@example.test")
    code, reply = _send(inbound, ["team@example.test"])
    assert code == 550
    assert b"quarantine threshold" in reply
    assert not QueuedMessage.objects.exists()
    assert not QuarantinedMessage.objects.exists()


def test_a_mailbox_without_an_address_is_held_under_its_own_recipient_not_another_tenants(
    inbound, mailboxes, make_principal, tenant_b
):
    """Bob (tenant B) has no address: he gets mail through his group's. One message to
    tenant A's jane and to that group is held for both; Bob's item names the address that
    reached him, never jane's: tenant B would see (and be digested to) another tenant's
    recipient, one the sender may have sent as a Bcc."""
    Principal.objects.create(name="b.test", type="domain", tenant=tenant_b)
    team = make_principal(name="team", tenant=tenant_b, type="group", roles=())
    team.emails.create(address="team@b.test")
    bob = make_principal(name="bob", tenant=tenant_b)
    bob.member_of.add(team)
    code, _ = _send(inbound, ["jane@example.test", "team@b.test"])
    assert code == 250
    held = {h.mailbox.name: h for h in QuarantinedMessage.objects.select_related("mailbox")}
    assert set(held) == {"jane", "bob"}
    assert (held["bob"].tenant_id, held["bob"].recipient, held["bob"].owner) == (
        tenant_b.pk,
        "team@b.test",
        "team@b.test",
    )
    assert held["bob"].domain == "b.test"
    assert (held["jane"].recipient, held["jane"].owner) == ("jane@example.test",) * 2


def test_a_mailbox_that_blocks_the_sender_forwards_nothing(inbound, mailboxes):
    """Jane's block list (or exclusive) keeps the sender out of her mailbox; her forward
    sent the message on anyway, so the block only hid it from her here."""
    from apps.queue.models import QueuedMessage

    _forwarding_profile(mailboxes, "jane", "jane@home.example")
    SenderListEntry.objects.create(
        mailbox=mailboxes["jane"],
        tenant_id=mailboxes["jane"].tenant_id,
        list="blacklist",
        value="remote.test",
    )
    code, reply = _send(inbound, ["jane@example.test"], HAM)
    assert code == 550 and reply.startswith(b"5.7.1 Message refused"), reply
    assert not QueuedMessage.objects.exists()
    assert not Message.objects.exists()


def test_a_held_members_forward_does_not_go_out_with_a_safe_listing_members_copy(
    inbound, mailboxes, make_principal, tenant_a
):
    """One group, two members: jane safe-lists the sender (her copy goes to her INBOX),
    joe's copy is held and he forwards. The forward is joe's: it waits with his copy,
    whatever jane's list says."""
    from apps.queue.models import QueuedMessage

    team = make_principal(name="team", tenant=tenant_a, type="group", roles=())
    team.emails.create(address="team@example.test")
    for name in ("jane", "joe"):
        mailboxes[name].member_of.add(team)
    _forwarding_profile(mailboxes, "joe", "joe@home.example")
    SenderListEntry.objects.create(
        mailbox=mailboxes["jane"],
        tenant_id=mailboxes["jane"].tenant_id,
        list="safelist",
        value="remote.test",
    )
    assert _send(inbound, ["team@example.test"])[0] == 250
    assert Message.objects.get().principal == mailboxes["jane"]
    assert QuarantinedMessage.objects.get().mailbox == mailboxes["joe"]
    assert not QueuedMessage.objects.exists()


def test_a_held_message_sends_no_mailbox_full_report_to_its_sender(
    inbound, mailboxes, make_principal, tenant_a
):
    """A group member's mailbox is full: the sender of a message we hold as spam is not
    sent a failure report (backscatter to an address spam forges, naming our member)."""
    from apps.queue.models import QueuedMessage

    team = make_principal(name="team", tenant=tenant_a, type="group", roles=())
    team.emails.create(address="team@example.test")
    for name in ("jane", "joe"):
        mailboxes[name].member_of.add(team)
    assert _send(inbound, ["jane@example.test"], HAM)[0] == 250  # her quota's worth
    Principal.objects.filter(pk=mailboxes["jane"].pk).update(quota=10)
    assert _send(inbound, ["team@example.test"])[0] == 250
    assert QuarantinedMessage.objects.get().mailbox == mailboxes["joe"]
    assert not QueuedMessage.objects.exists()
    # A message delivered to joe still reports jane's full mailbox to its sender.
    assert _send(inbound, ["team@example.test"], HAM)[0] == 250
    [dsn] = QueuedMessage.objects.all()
    assert dsn.return_path == ""


def test_a_message_the_scan_fails_on_is_held_not_deferred_for_ever(inbound, mailboxes, monkeypatch):
    """A scan that raises on some message (a bug, not an outage) answered 451, and the
    sender's server retried the same bytes into the same bug for days. The message is
    held for an administrator, with why; an outage (the database) is still a 451."""
    from django.db import DatabaseError

    from apps.spamfilter import checks

    def broken(context):
        raise ValueError("a check tripped over this message")

    monkeypatch.setattr(checks, "run_checks", broken)
    code, _ = _send(inbound, ["jane@example.test"], HAM)
    assert code == 250
    assert not Message.objects.exists()
    [held] = QuarantinedMessage.objects.all()
    assert held.mailbox == mailboxes["jane"]
    assert held.reasons == ["the spam filter could not scan this message (ValueError)"]
    assert blobs.read(held.blob_hash).endswith(HAM)

    def outage(context):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(checks, "run_checks", outage)
    assert _send(inbound, ["jane@example.test"], HAM)[0] == 451
    assert QuarantinedMessage.objects.count() == 1


def test_a_closed_database_connection_is_an_outage_not_a_verdict(inbound, mailboxes, monkeypatch):
    """InterfaceError (a connection closed under the scan) is no DatabaseError in Django:
    it is as temporary as one, so the sender is told 451, not the message held."""
    from django.db import InterfaceError

    from apps.spamfilter import checks

    def closed(context):
        raise InterfaceError("connection already closed")

    monkeypatch.setattr(checks, "run_checks", closed)
    assert _send(inbound, ["jane@example.test"], HAM)[0] == 451
    assert not QuarantinedMessage.objects.exists()


def test_a_rules_file_no_process_could_load_is_an_outage_not_a_verdict(
    inbound, mailboxes, monkeypatch
):
    """A listener started on a refused rules file fails every scan until an administrator
    fixes the file: the senders are told to come back (451), not every message held."""
    from apps.spamfilter import rules

    def refused():
        raise rules.RulesError("rules.yaml: tag FOO defined twice")

    monkeypatch.setattr(rules, "bundled", refused)
    assert _send(inbound, ["jane@example.test"], HAM)[0] == 451
    assert not QuarantinedMessage.objects.exists()


def test_a_full_member_that_blocks_the_sender_is_neither_forwarded_to_nor_reported(
    inbound, mailboxes, make_principal, tenant_a
):
    """Jane's mailbox is full, so the scan was never asked about her lists: the sender
    she blocks got her forward and a report naming her."""
    from apps.queue.models import QueuedMessage

    team = make_principal(name="team", tenant=tenant_a, type="group", roles=())
    team.emails.create(address="team@example.test")
    for name in ("jane", "joe"):
        mailboxes[name].member_of.add(team)
    _forwarding_profile(mailboxes, "jane", "jane@home.example")
    SenderListEntry.objects.create(
        mailbox=mailboxes["jane"],
        tenant_id=mailboxes["jane"].tenant_id,
        list="blacklist",
        value="remote.test",
    )
    assert _send(inbound, ["joe@example.test"], HAM)[0] == 250  # a quota's worth for jane:
    Message.objects.filter(principal=mailboxes["joe"]).update(principal=mailboxes["jane"])
    Principal.objects.filter(pk=mailboxes["jane"].pk).update(quota=10)
    assert _send(inbound, ["team@example.test"], HAM)[0] == 250
    assert Message.objects.filter(principal=mailboxes["joe"]).count() == 1
    assert not QueuedMessage.objects.exists()
