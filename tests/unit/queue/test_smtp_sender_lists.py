"""The mailboxes' own block and safe lists in the inbound MX path, over real sockets: a
safe-listed sender is never junked or refused for that mailbox (the other recipients'
copies of a message the filter would refuse are held in the quarantine), a blocked
sender's copy is not stored and a message every recipient blocks is refused with 550 5.7.1
at DATA."""

from __future__ import annotations

import pytest

from apps.domains import dkim, records
from apps.spamfilter import lookups
from apps.spamfilter.models import MailboxSpamSetting, QuarantinedMessage, SenderListEntry
from apps.store import blobs
from apps.store.models import Message
from tests.support.smtp_listeners import connect
from tests.unit.queue.test_smtp_filtering import GTUBE, HAM

pytestmark = pytest.mark.django_db(transaction=True)
BARE = b"From: sender@remote.test\r\nSubject: hello\r\n\r\nHello Jane.\r\n"


@pytest.fixture(autouse=True)
def _blob_dir(settings, tmp_path):
    settings.MAILADMIN_BLOB_DIR = tmp_path / "blobs"


def _listed(principal, list_name: str, value: str) -> None:
    SenderListEntry.objects.create(
        mailbox=principal, tenant_id=principal.tenant_id, list=list_name, value=value
    )


def _send(inbound, recipients, message=HAM, sender="sender@remote.test"):
    with connect(inbound) as client:
        client.mail(sender)
        for rcpt in recipients:
            assert client.rcpt(rcpt)[0] == 250
        return client.data(message)


def test_a_sender_every_recipient_blocks_is_refused_at_data(inbound, mailboxes):
    _listed(mailboxes["jane"], "blacklist", "remote.test")  # the domain
    _listed(mailboxes["joe"], "blacklist", "sender@remote.test")  # the address
    code, reply = _send(inbound, ["jane@example.test", "joe@example.test"])
    assert code == 550
    assert reply == b"5.7.1 Message refused: the recipient does not accept mail from this sender"
    assert not Message.objects.exists()


def test_a_blocked_copy_is_dropped_and_the_others_delivered(inbound, mailboxes):
    _listed(mailboxes["jane"], "ipblacklist", "127.0.0.0/8")
    code, _ = _send(inbound, ["jane@example.test", "joe@example.test"])
    assert code == 250
    assert not Message.objects.filter(principal=mailboxes["jane"]).exists()
    assert Message.objects.filter(principal=mailboxes["joe"]).count() == 1


def test_a_subdomain_of_a_blocked_domain_is_blocked(inbound, mailboxes):
    _listed(mailboxes["jane"], "blacklist", "remote.test")
    message = HAM.replace(b"sender@remote.test", b"news@mail.remote.test")
    code, _ = _send(inbound, ["jane@example.test"], message, sender="news@mail.remote.test")
    assert code == 550


def test_a_safelisted_sender_is_never_refused_for_that_mailbox(inbound, mailboxes):
    """GTUBE is refused by the filter (its rule's action is reject) for joe alone, but jane
    safe-lists the sender's IP, so the message is accepted: INBOX for jane, and joe's copy,
    which the filter would have refused, is held in his quarantine (neither INBOX nor
    Junk) with the verdict's score, tags and reasons."""
    code, _ = _send(inbound, ["joe@example.test"], GTUBE)
    assert code == 550
    _listed(mailboxes["jane"], "ipsafelist", "127.0.0.1")
    code, _ = _send(inbound, ["jane@example.test", "joe@example.test"], GTUBE)
    assert code == 250
    [for_jane] = Message.objects.filter(principal=mailboxes["jane"])
    assert for_jane.folder.name == "INBOX"
    data = blobs.read(for_jane.blob_hash)
    assert data.startswith(b"X-Spam-Sender-List: SAFELISTED\r\n")
    assert data.endswith(GTUBE)
    assert not Message.objects.filter(principal=mailboxes["joe"]).exists()
    [held] = QuarantinedMessage.objects.all()
    assert (held.mailbox, held.kind, held.recipient) == (
        mailboxes["joe"],
        "mailbox",
        "joe@example.test",
    )
    assert held.reasons == ["GTUBE: The generic test for unsolicited bulk email"]
    assert "GTUBE" in held.tags and held.score > 0
    held_data = blobs.read(held.blob_hash)
    assert b"SAFELISTED" not in held_data
    assert held_data.endswith(GTUBE) and b"X-Spam-Status: Yes" in held_data


def test_a_safelisted_from_address_signed_by_its_domain_is_not_junked(
    inbound, mailboxes, settings, dns_server
):
    """Null envelope sender (no SPF for remote.test), but a DKIM signature of remote.test:
    the From address is authenticated and jane's safe list applies."""
    settings.MAILADMIN_SPAM_THRESHOLD_SPAM = 0.5
    pair = dkim.generate(dkim.RSA)
    dns_server.set_zone(
        records.dkim_name("remote.test", "s1"),
        {"TXT": [dkim.txt_record(pair.algorithm, pair.public_key)]},
    )
    signed = dkim.sign(BARE, domain="remote.test", selector="s1", key=pair) + BARE
    _listed(mailboxes["jane"], "safelist", "sender@remote.test")
    code, _ = _send(inbound, ["jane@example.test", "joe@example.test"], signed, sender="")
    assert code == 250
    for_jane = Message.objects.get(principal=mailboxes["jane"])
    assert for_jane.folder.name == "INBOX"
    data = blobs.read(for_jane.blob_hash)
    assert data.startswith(b"X-Spam-Sender-List: SAFELISTED\r\n")
    assert b"dkim=pass header.d=remote.test" in data
    assert Message.objects.get(principal=mailboxes["joe"]).folder.name == "Junk"


def test_a_spoofed_safelisted_from_address_is_not_honoured(inbound, mailboxes, settings):
    """The same message unsigned, from a server remote.test does not authorise: anyone
    could have written that From line, so jane's copy is filtered like joe's, and tagged
    with why her safe list was not applied."""
    settings.MAILADMIN_SPAM_THRESHOLD_SPAM = 0.5
    _listed(mailboxes["jane"], "safelist", "sender@remote.test")
    code, _ = _send(inbound, ["jane@example.test", "joe@example.test"], BARE, sender="")
    assert code == 250
    for_jane = Message.objects.get(principal=mailboxes["jane"])
    assert for_jane.folder.name == "Junk"
    data = blobs.read(for_jane.blob_hash)
    assert data.startswith(
        b"X-Spam-Sender-List: UNVERIFIED; safe list not applied: sender@remote.test is not "
        b"authenticated for remote.test (dmarc=fail, spf=none for client.test, dkim=none)\r\n"
    )
    for_joe = Message.objects.get(principal=mailboxes["joe"])
    assert for_joe.folder.name == "Junk"
    assert b"X-Spam-Sender-List" not in blobs.read(for_joe.blob_hash)


def test_a_spoofed_envelope_sender_is_not_honoured_either(inbound, mailboxes, dns_server):
    """GTUBE over the reject threshold, MAIL FROM a safe-listed domain whose SPF does not
    authorise this IP: refused like for anyone; from an authorised IP, accepted."""
    dns_server.set_zone("remote.test", {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]})
    _listed(mailboxes["jane"], "safelist", "remote.test")
    code, _ = _send(inbound, ["jane@example.test"], GTUBE)
    assert code == 550
    assert not Message.objects.exists()
    dns_server.set_zone("remote.test", {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]})
    lookups.cache_clear()
    code, _ = _send(inbound, ["jane@example.test"], GTUBE)
    assert code == 250
    assert Message.objects.get(principal=mailboxes["jane"]).folder.name == "INBOX"


def test_an_ip_safe_entry_needs_no_authentication(inbound, mailboxes, settings):
    settings.MAILADMIN_SPAM_THRESHOLD_SPAM = 0.5
    _listed(mailboxes["jane"], "ipsafelist", "127.0.0.0/8")
    code, _ = _send(inbound, ["jane@example.test"], BARE, sender="")
    assert code == 250
    assert Message.objects.get(principal=mailboxes["jane"]).folder.name == "INBOX"


def test_a_safe_entry_wins_over_a_blocked_domain(inbound, mailboxes):
    _listed(mailboxes["jane"], "blacklist", "remote.test")
    _listed(mailboxes["jane"], "safelist", "sender@remote.test")
    code, _ = _send(inbound, ["jane@example.test"])
    assert code == 250
    assert Message.objects.get(principal=mailboxes["jane"]).folder.name == "INBOX"


def test_another_mailboxs_lists_do_not_apply(inbound, mailboxes):
    _listed(mailboxes["joe"], "blacklist", "remote.test")
    code, _ = _send(inbound, ["jane@example.test"])
    assert code == 250
    assert Message.objects.filter(principal=mailboxes["jane"]).count() == 1


def _level(principal, level: str) -> None:
    MailboxSpamSetting.objects.create(
        mailbox=principal, tenant_id=principal.tenant_id, filter_level=level
    )


def test_an_exclusive_mailbox_takes_only_safe_listed_senders(inbound, mailboxes):
    _level(mailboxes["jane"], "exclusive")
    code, reply = _send(inbound, ["jane@example.test"])
    assert code == 550
    assert reply.startswith(b"5.7.1 ")
    code, _ = _send(inbound, ["jane@example.test", "joe@example.test"])
    assert code == 250
    assert not Message.objects.filter(principal=mailboxes["jane"]).exists()
    _listed(mailboxes["jane"], "safelist", "remote.test")
    code, _ = _send(inbound, ["jane@example.test"])
    assert code == 250
    assert Message.objects.get(principal=mailboxes["jane"]).folder.name == "INBOX"


def test_a_mailbox_with_its_filter_off_gets_even_spam_in_its_inbox(inbound, mailboxes):
    _level(mailboxes["jane"], "off")
    code, _ = _send(inbound, ["jane@example.test", "joe@example.test"], GTUBE)
    assert code == 250
    for_jane = Message.objects.get(principal=mailboxes["jane"])
    assert for_jane.folder.name == "INBOX"
    assert b"SAFELISTED" not in blobs.read(for_jane.blob_hash)
    # GTUBE is refused by the filter: joe's copy is held, not delivered
    assert not Message.objects.filter(principal=mailboxes["joe"]).exists()
    assert QuarantinedMessage.objects.get().mailbox == mailboxes["joe"]
    _listed(mailboxes["jane"], "blacklist", "remote.test")  # its block list still holds
    code, _ = _send(inbound, ["jane@example.test"])
    assert code == 550
