"""The quarantine end to end: a message the MX holds is named in the daily digest, which
reaches a remote owner over SMTP (the sink); released, it lands in the INBOX and the
account's model learns it as ham, and the account's next mail is judged by that model."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from apps.queue import delivery
from apps.queue.models import QueueDomain
from apps.spamfilter import bayes, quarantine
from apps.spamfilter.message import parse
from apps.spamfilter.models import MailboxSpamSetting, QuarantinedMessage
from apps.store import blobs
from apps.store.models import Message
from tests.unit.queue.test_smtp_quarantine import _send

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _thresholds(settings, tmp_path):
    settings.MAILADMIN_BLOB_DIR = tmp_path / "blobs"
    settings.MAILADMIN_SPAM_THRESHOLD_QUARANTINE = 6.0
    settings.MAILADMIN_SPAM_THRESHOLD_SPAM = 5.0


def test_the_digest_of_a_held_message_reaches_a_remote_owner_over_smtp(inbound, mailboxes, mx):
    jane = mailboxes["jane"]
    MailboxSpamSetting.objects.create(
        mailbox=jane,
        tenant_id=jane.tenant_id,
        send_to_domain_quarantine=True,
        quarantine_owner="it@remote.test",
    )
    code, _ = _send(inbound, ["jane@example.test"])
    assert code == 250
    [held] = QuarantinedMessage.objects.all()
    assert (held.kind, held.owner) == ("domain", "it@remote.test")
    counts = quarantine.quarantine_digest_send()
    assert counts["queued"] == 1
    [entry] = QueueDomain.objects.filter(name="remote.test")
    assert delivery.deliver(entry.pk, drain=False) == 1
    [received] = mx.wait_for(1)
    assert (received.mail_from, received.rcpt_tos) == ("<>", ["it@remote.test"])
    digest = message_from_bytes(received.data, policy=policy.default)
    assert digest["Subject"] == "Quarantine digest: 1 new message"
    text = digest.get_content()
    assert f"#{held.pk} " in text and "Subject: cheap watches" in text
    assert "To:      jane@example.test" in text
    assert quarantine.quarantine_digest_send()["owners"] == 0  # named once


def test_release_delivers_trains_ham_and_the_accounts_model_then_judges(
    inbound, mailboxes, superadmin, settings, monkeypatch
):
    settings.REDIS_URL = ""
    settings.MAILADMIN_SPAM_BAYES_MIN_LEARNS = 1
    monkeypatch.setattr(bayes, "MIN_COUNT", 1)
    jane = mailboxes["jane"]
    scope = bayes.account_scope(jane.pk)
    bayes.learn(parse(b"Subject: pills\r\n\r\ncheap pills viagra"), spam=True, scope=scope)
    _send(inbound, ["jane@example.test"])
    [held] = QuarantinedMessage.objects.all()
    result = quarantine.quarantine_release(actor=superadmin, items=QuarantinedMessage.objects.all())
    assert (result.done, result.failed) == (1, [])
    [stored] = Message.objects.filter(principal=jane)
    assert stored.folder.name == "INBOX"
    assert bayes.learned(scope) == (1, 1)
    assert not QuarantinedMessage.objects.exists()
    # Jane's model, now ready, judges her next copy of it (the global one has learned
    # nothing): its ham vote takes it under the quarantine threshold.
    assert bayes.learned(bayes.GLOBAL) == (0, 0)
    _send(inbound, ["jane@example.test"])
    assert not QuarantinedMessage.objects.exists()
    again = Message.objects.filter(principal=jane).exclude(pk=stored.pk).get()
    assert b"BAYES_HAM" in blobs.read(again.blob_hash).split(b"\r\n\r\n", 1)[0]
