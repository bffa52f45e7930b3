"""The quarantine digest reaches the quarantine's owner only, with only its items, and stays
bounded (and truthful) for a quarantine of many thousand items."""

from __future__ import annotations

import pytest

from apps.accounts.models import Principal
from apps.spamfilter import quarantine
from apps.spamfilter.models import QuarantinedMessage
from apps.spamfilter.tasks import quarantine_digest_task
from apps.store import blobs
from apps.store.models import Message
from tests.unit.spamfilter import test_quarantine
from tests.unit.spamfilter.test_quarantine import _message, _run, hold

jane, mailbox = test_quarantine.jane, test_quarantine.mailbox  # its fixtures

pytestmark = pytest.mark.django_db


def _group_member_without_address(make_principal, tenant, group):
    member = make_principal(name="bob", tenant=tenant)
    member.member_of.add(group)
    return member


def test_a_mailbox_reached_through_a_group_gets_its_digest_and_the_other_members_do_not(
    make_principal, tenant_b, django_capture_on_commit_callbacks
):
    """Bob has no address of his own: his item's owner is the group address that reached
    him. Sending his digest to that address gave every member of the group a list of the
    mail held for Bob (senders, subjects)."""
    Principal.objects.create(name="b.test", type="domain", tenant=tenant_b)
    team = make_principal(name="team", tenant=tenant_b, type="group", roles=())
    team.emails.create(address="team@b.test")
    bob = _group_member_without_address(make_principal, tenant_b, team)
    carol = make_principal(name="carol", tenant=tenant_b)
    carol.emails.create(address="carol@b.test")
    carol.member_of.add(team)
    [item] = quarantine.quarantine_store(
        mailboxes=[bob], data=_message("Bob's private offer"), sender="x@junk.test",
        score=9.0, tags={}, reasons=[], routed_to={bob.pk: "team@b.test"},
    )  # fmt: skip
    assert item.owner == "team@b.test"
    run = _run(quarantine_digest_task, quarantine.DIGEST_TASK, django_capture_on_commit_callbacks)
    assert run.message == "1 digest(s) for 1 item(s): 1 delivered, 0 queued, 0 undeliverable."
    assert not Message.objects.filter(principal=carol).exists()
    [digest] = Message.objects.filter(principal=bob, folder__name="INBOX")
    assert b"Bob's private offer" in blobs.read(digest.blob_hash)


def test_two_mailboxes_behind_one_group_address_get_a_digest_each(
    make_principal, tenant_b, django_capture_on_commit_callbacks
):
    Principal.objects.create(name="b.test", type="domain", tenant=tenant_b)
    team = make_principal(name="team", tenant=tenant_b, type="group", roles=())
    team.emails.create(address="team@b.test")
    bob = _group_member_without_address(make_principal, tenant_b, team)
    dora = make_principal(name="dora", tenant=tenant_b)
    dora.member_of.add(team)
    for who, subject in ((bob, "For Bob"), (dora, "For Dora")):
        quarantine.quarantine_store(
            mailboxes=[who], data=_message(subject), sender="x@junk.test", score=9.0,
            tags={}, reasons=[], routed_to={who.pk: "team@b.test"},
        )  # fmt: skip
    run = _run(quarantine_digest_task, quarantine.DIGEST_TASK, django_capture_on_commit_callbacks)
    assert run.message == "2 digest(s) for 2 item(s): 2 delivered, 0 queued, 0 undeliverable."
    for who, mine, theirs in ((bob, b"For Bob", b"For Dora"), (dora, b"For Dora", b"For Bob")):
        [digest] = Message.objects.filter(principal=who)
        text = blobs.read(digest.blob_hash)
        assert mine in text and theirs not in text


def test_a_digest_goes_to_the_mailbox_even_after_its_address_went_to_another(
    jane,
    mailbox,
    tenant_a,
    django_capture_on_commit_callbacks,
):
    """Jane's address is given to a new account before the night's digest: what was held
    for Jane is still Jane's to read."""
    hold(jane, "Jane's held mail")
    jane.emails.all().delete()
    newcomer = mailbox("newcomer", tenant_a)
    newcomer.emails.all().delete()
    newcomer.emails.create(address="jane@example.test")
    _run(quarantine_digest_task, quarantine.DIGEST_TASK, django_capture_on_commit_callbacks)
    assert not Message.objects.filter(principal=newcomer).exists()
    [digest] = Message.objects.filter(principal=jane)
    assert b"Jane's held mail" in blobs.read(digest.blob_hash)


def test_a_disabled_mailbox_gets_no_digest_and_its_items_are_marked(
    jane,
    django_capture_on_commit_callbacks,
):
    item = hold(jane)
    jane.is_active = False
    jane.save(update_fields=["is_active"])
    run = _run(quarantine_digest_task, quarantine.DIGEST_TASK, django_capture_on_commit_callbacks)
    assert "1 undeliverable" in run.message
    assert not Message.objects.exists()
    item.refresh_from_db()
    assert item.digested_at is not None


def _copies(item, n: int) -> None:
    fields = {f.attname: getattr(item, f.attname) for f in item._meta.concrete_fields}
    del fields["id"]
    QuarantinedMessage.objects.bulk_create(
        [QuarantinedMessage(**{**fields, "subject": f"Offer {i}"}) for i in range(n)],
        batch_size=2000,
    )


def test_a_quarantine_of_many_thousand_items_gets_one_bounded_digest_that_counts_them_all(
    jane, django_capture_on_commit_callbacks
):
    """10,500 items held since the last digest: one digest naming 200 of them and saying
    how many there are, and every one marked. It said 10,000 (its cap of ids read) and left
    the other 500 for the next night's digest, which called them new again."""
    _copies(hold(jane), 10_499)
    run = _run(quarantine_digest_task, quarantine.DIGEST_TASK, django_capture_on_commit_callbacks)
    assert run.message == ("1 digest(s) for 10500 item(s): 1 delivered, 0 queued, 0 undeliverable.")
    [digest] = Message.objects.filter(principal=jane)
    assert digest.subject == "Quarantine digest: 10500 new messages"
    text = blobs.read(digest.blob_hash).decode()
    assert text.count("  Open:    ") == quarantine.DIGEST_MAX_ITEMS
    assert "... and 10300 more." in text
    assert digest.size < 200_000
    assert not QuarantinedMessage.objects.filter(digested_at__isnull=True).exists()


def test_hostile_subjects_and_senders_stay_text_in_the_digest_and_the_list(
    client, admin_a, jane, django_capture_on_commit_callbacks
):
    data = (
        b"From: =?utf-8?q?x=0D=0ABcc:_all@b.example?= <x@evil.example>\r\n"
        b"Subject: =?utf-8?q?Hi=0D=0ABcc:_all@b.example=0D=0A=0D=0A__Open:_http://evil?="
        b" <script>alert(1)</script>\r\n\r\nbody\r\n"
    )
    quarantine.quarantine_store(
        mailboxes=[jane], data=data, sender="x@evil.example", score=9.0, tags={}, reasons=[]
    )
    _run(quarantine_digest_task, quarantine.DIGEST_TASK, django_capture_on_commit_callbacks)
    [digest] = Message.objects.filter(principal=jane)
    text = blobs.read(digest.blob_hash).decode()
    head, _, body = text.partition("\r\n\r\n")
    assert "Bcc" not in head and head.count("\r\nTo: ") == 1
    assert "  Subject: Hi Bcc: all@b.example Open: http://evil <script>" in body
    assert "\r\n  Open:    http://evil" not in body
    client.force_login(admin_a)
    page = client.get("/spam-filter/quarantine/").content.decode()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
