"""The spam filter in the inbound MX path: its headers on top of what is stored, spam in
Junk, a rejecting verdict refused at DATA with nothing stored, and the authentication
outcome recorded for our outgoing DMARC reports. Real sockets, the live DNS fixture."""

from __future__ import annotations

import pytest

from apps.accounts.models import Principal, PrincipalType
from apps.reports.models import InboundAuthResult
from apps.store import blobs
from apps.store.models import Message
from tests.support.mime import nested_multipart
from tests.support.smtp_listeners import connect

pytestmark = pytest.mark.django_db(transaction=True)

HAM = (
    b"From: Sender <sender@remote.test>\r\n"
    b"To: Jane <jane@example.test>\r\n"
    b"Subject: Lunch on Thursday\r\n"
    b"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <lunch-1@remote.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Shall we meet at noon at the usual place? Bring the notes from Monday.\r\n"
)
GTUBE = HAM.replace(
    b"Shall we meet", b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"
)


@pytest.fixture(autouse=True)
def _blob_dir(settings, tmp_path):
    settings.MAILADMIN_BLOB_DIR = tmp_path / "blobs"


@pytest.fixture
def jane(make_principal, tenant_a, dns_server):
    Principal.objects.create(name="example.test", type=PrincipalType.DOMAIN, tenant=tenant_a)
    principal = make_principal(name="jane", tenant=tenant_a)
    principal.emails.create(address="jane@example.test")
    dns_server.set_zone("remote.test", {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]})
    dns_server.set_zone("_dmarc.remote.test", {"TXT": ["v=DMARC1; p=reject"]})
    return principal


@pytest.mark.parametrize("options, tagged", [(["SMTPUTF8"], False), (["BODY=8BITMIME"], True)])
def test_a_raw_utf8_subject_is_a_sign_only_outside_an_smtputf8_transaction(
    inbound, jane, options, tagged
):
    """RFC 6532 allows raw UTF-8 in the header of mail sent with SMTPUTF8: the MX tells the
    scan, so an internationalised sender's Subject is not scored as a bulk tool's."""
    data = HAM.replace(b"Lunch on Thursday", "Mittagessen am Donnerstag \u2615".encode())
    with connect(inbound) as client:
        client.sendmail("sender@remote.test", ["jane@example.test"], data, mail_options=options)
    [stored] = Message.objects.filter(principal=jane)
    head = blobs.read(stored.blob_hash).split(b"\r\n\r\n", 1)[0]
    assert b"X-Spam-Result: " in head
    assert (b"SUBJ_NEEDS_ENCODING" in head) is tagged


def test_a_clean_message_gets_the_filters_headers_and_lands_in_the_inbox(inbound, jane):
    with connect(inbound) as client:
        client.sendmail("sender@remote.test", ["jane@example.test"], HAM)
    [stored] = Message.objects.filter(principal=jane)
    assert stored.folder.name == "INBOX"
    data = blobs.read(stored.blob_hash)
    assert data.startswith(b"Authentication-Results: ")
    head = data.split(b"\r\n\r\n", 1)[0]
    assert b"spf=pass" in head and b"dmarc=pass" in head
    assert b"X-Spam-Status: No" in head
    assert data.endswith(HAM)
    [row] = InboundAuthResult.objects.all()
    assert (row.header_from, row.spf_result, row.dmarc_result, row.disposition) == (
        "remote.test",
        "pass",
        "pass",
        "none",
    )


def test_each_author_domain_of_the_from_gets_its_own_report_row(inbound, jane, dns_server):
    """RFC 7489 6.6.1, 7.2: a From naming two authors is judged for both domains, and
    each domain's aggregate report is owed its own row; only the first was recorded."""
    dns_server.set_zone("_dmarc.other.test", {"TXT": ["v=DMARC1; p=none"]})
    message = HAM.replace(
        b"From: Sender <sender@remote.test>", b"From: sender@remote.test, b@other.test"
    )
    with connect(inbound) as client:
        client.sendmail("sender@remote.test", ["jane@example.test"], message)
    rows = InboundAuthResult.objects.order_by("header_from")
    assert [(r.header_from, r.dmarc_result, r.spf_aligned) for r in rows] == [
        ("other.test", "fail", "fail"),
        ("remote.test", "pass", "pass"),
    ]


def test_a_message_over_the_reject_threshold_is_refused_and_nothing_is_stored(inbound, jane):
    with connect(inbound) as client:
        client.mail("sender@remote.test")
        client.rcpt("jane@example.test")
        code, reply = client.data(GTUBE)
    assert code == 550
    assert reply.startswith(b"5.7.1 ") and b"GTUBE" in reply, reply  # the reply names why
    assert not Message.objects.exists()
    [row] = InboundAuthResult.objects.all()
    assert row.disposition == "reject"


def test_spam_goes_to_junk(inbound, jane, settings):
    """No Date, no Message-ID, no MIME-Version, no display name: marked spam at a low
    threshold, kept in Junk."""
    settings.MAILADMIN_SPAM_THRESHOLD_SPAM = 0.5
    bare = b"From: sender@remote.test\r\nSubject: hello\r\n\r\nHello Jane.\r\n"
    with connect(inbound) as client:
        client.sendmail("sender@remote.test", ["jane@example.test"], bare)
    [stored] = Message.objects.filter(principal=jane)
    assert stored.folder.name == "Junk"
    assert b"X-Spam-Status: Yes" in blobs.read(stored.blob_hash)


def test_mime_nested_past_100_levels_is_refused_for_good_and_the_session_goes_on(inbound, jane):
    """A 100 KB message of 1,000 nested multiparts made the parser's recursion overflow:
    the MX answered 451 and the sender would have retried for days."""
    head = HAM.split(b"MIME-Version")[0]
    with connect(inbound) as client:
        for depth in (1000, 101):
            client.mail("sender@remote.test")
            client.rcpt("jane@example.test")
            assert client.data(nested_multipart(depth, head)) == (
                554,
                b"5.6.0 The message's MIME parts are nested more than 100 levels deep.",
            )
        client.mail("sender@remote.test")
        client.rcpt("jane@example.test")
        assert client.data(nested_multipart(100, head))[0] == 250
    [stored] = Message.objects.filter(principal=jane)
    assert blobs.read(stored.blob_hash).endswith(nested_multipart(100, head))
