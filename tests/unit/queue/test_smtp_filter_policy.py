"""The spam filter in the inbound path, beyond the first tests: the recipient's own Bayes
model votes, a rejecting verdict's reply names why, and `filterlevel` exclusive keeps out
every sender its safe lists don't name."""

from __future__ import annotations

import pytest

from apps.queue.smtp.inbound import InboundMessage, scan_inbound
from apps.spamfilter import bayes
from apps.spamfilter.message import parse
from apps.spamfilter.models import MailboxSpamSetting, SenderListEntry
from apps.store.models import Message
from tests.support.smtp_listeners import connect
from tests.unit.queue.test_smtp_filtering import HAM

KNITTING = HAM.replace(b"Lunch on Thursday", b"Weekly knitting digest").replace(
    b"Shall we meet at noon at the usual place? Bring the notes from Monday.",
    b"New knitting patterns, merino wool and circular needles this week.",
)


def _inbound(data: bytes, recipients: list[str]) -> InboundMessage:
    return InboundMessage(
        queue_id="Q1",
        mail_from="sender@remote.test",
        recipients=recipients,
        peer_ip="127.0.0.1",
        helo="mx.remote.test",
        tls=False,
        data=data,
    )


def _head(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


@pytest.mark.django_db
def test_a_single_recipients_own_bayes_model_votes(mailboxes, settings, monkeypatch):
    """Release from the quarantine and the train API teach an account's model; the MX
    must ask it, or what the account taught it never counts."""
    settings.REDIS_URL = ""  # the database store: the test's transaction holds it
    settings.MAILADMIN_SPAM_BAYES_MIN_LEARNS = 1
    monkeypatch.setattr(bayes, "MIN_COUNT", 1)
    jane, joe = mailboxes["jane"], mailboxes["joe"]
    scope = bayes.account_scope(jane.pk)
    bayes.learn(parse(KNITTING), spam=True, scope=scope)
    bayes.learn(parse(HAM), spam=False, scope=scope)
    verdict = scan_inbound(_inbound(KNITTING, ["jane@example.test"]), [jane.pk])
    assert b"BAYES_SPAM" in _head(verdict.data)
    # Two recipients: one scan for both, so no one account's model speaks for the other.
    both = scan_inbound(_inbound(KNITTING, ["jane@example.test", "joe@example.test"]),
                        [jane.pk, joe.pk])  # fmt: skip
    assert b"BAYES_SPAM" not in _head(both.data)


@pytest.mark.django_db(transaction=True)
def test_exclusive_accepts_only_safe_listed_senders(inbound, mailboxes):
    jane, joe = mailboxes["jane"], mailboxes["joe"]
    MailboxSpamSetting.objects.create(
        mailbox=jane, tenant_id=jane.tenant_id, filter_level="exclusive"
    )
    with connect(inbound) as client:
        client.mail("sender@remote.test")
        client.rcpt("jane@example.test")
        code, reply = client.data(HAM)
    assert code == 550 and reply.startswith(b"5.7.1"), reply
    assert not Message.objects.filter(principal=jane).exists()
    # Joe (filter on) still gets it when both are asked for.
    with connect(inbound) as client:
        client.sendmail("sender@remote.test", ["jane@example.test", "joe@example.test"], HAM)
    assert not Message.objects.filter(principal=jane).exists()
    assert Message.objects.filter(principal=joe).count() == 1  # (Junk: not in To)
    # Safe-listed (and authenticated: SPF passes for remote.test): through to the INBOX.
    SenderListEntry.objects.create(
        mailbox=jane, tenant_id=jane.tenant_id, list="safelist", value="remote.test"
    )
    with connect(inbound) as client:
        client.sendmail("sender@remote.test", ["jane@example.test"], HAM)
    assert Message.objects.filter(principal=jane, folder__name="INBOX").count() == 1
    # A safe-listed IP (the connection's) lets through a sender its address lists don't name.
    SenderListEntry.objects.all().delete()
    SenderListEntry.objects.create(
        mailbox=jane, tenant_id=jane.tenant_id, list="ipsafelist", value="127.0.0.0/8"
    )
    other = HAM.replace(b"sender@remote.test", b"someone@elsewhere.test")
    with connect(inbound) as client:
        client.sendmail("someone@elsewhere.test", ["jane@example.test"], other)
    assert Message.objects.filter(principal=jane, folder__name="INBOX").count() == 2


@pytest.mark.django_db
def test_results_a_sender_forged_in_our_name_are_dropped(mailboxes, settings):
    """RFC 8601 section 5: an MTA MUST delete Authentication-Results that claim its own
    authserv-id; so too the X-Spam-* headers only we write (a forged SAFELISTED or
    score=-100 would read as ours to a reader or a Sieve rule)."""
    settings.MAILADMIN_SPAM_AUTHSERV_ID = "mx.ours.test"
    forged = (
        b"Authentication-Results: MX.ours.test (trust me);\r\n\tdkim=pass header.d=bank.example\r\n"
        b"Authentication-Results: other.example; spf=pass smtp.mailfrom=a@other.example\r\n"
        b"X-Spam-Status: No, score=-100.00\r\n"
        b"X-Spam-Result: none\r\n"
        b"X-Spam-Sender-List: SAFELISTED\r\n"
        b"X-Spam-Flag: kept (not ours)\r\n"
    )
    jane = mailboxes["jane"]
    verdict = scan_inbound(_inbound(forged + HAM, ["jane@example.test"]), [jane.pk])
    head = _head(verdict.data)
    assert head.count(b"Authentication-Results: ") == 2, head
    assert head.startswith(b"Authentication-Results: mx.ours.test;")
    assert b"bank.example" not in head and b"trust me" not in head
    assert b"Authentication-Results: other.example; spf=pass" in head
    assert head.count(b"X-Spam-Status: ") == 1 and b"score=-100" not in head
    assert head.count(b"X-Spam-Result: ") == 1
    assert b"SAFELISTED" not in head
    assert b"X-Spam-Flag: kept (not ours)\r\n" in head
    assert verdict.data.endswith(HAM)


@pytest.mark.django_db(transaction=True)
def test_a_score_over_the_reject_threshold_is_refused_naming_it(inbound, mailboxes, settings):
    settings.MAILADMIN_SPAM_THRESHOLD_REJECT = 2.0
    bare = b"From: sender@remote.test\r\nSubject: hello\r\n\r\nHello Jane.\r\n"
    with connect(inbound) as client:
        client.mail("sender@remote.test")
        client.rcpt("jane@example.test")
        code, reply = client.data(bare)
    assert code == 550
    assert reply.startswith(b"5.7.1 spam score ") and b"reaches the reject threshold 2" in reply
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_results_forged_in_our_name_are_dropped_with_the_filter_off(mailboxes, settings):
    """MAILADMIN_SPAM_FILTER=false skips the scan, not the cleaning: a mail client trusts
    Authentication-Results under our authserv-id and a Sieve rule X-Spam-*, whether or
    not the filter ran today."""
    settings.MAILADMIN_SPAM_FILTER = False
    settings.MAILADMIN_SPAM_AUTHSERV_ID = "mx.ours.test"
    forged = (
        b"authentication-results :\r\n mx.ours.test; dkim=pass header.d=bank.example\r\n"
        b"X-Spam-Sender-List: SAFELISTED\r\n"
    )
    verdict = scan_inbound(_inbound(forged + HAM, ["jane@example.test"]), [mailboxes["jane"].pk])
    assert verdict.data == HAM
