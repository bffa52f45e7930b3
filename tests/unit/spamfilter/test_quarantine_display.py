"""What a reviewer reads of a held message (the list, the digest) is the address the mail
came from: a display name's encoded words decode to text, never to another address."""

from __future__ import annotations

import pytest

from apps.spamfilter import quarantine
from apps.store.headers import parse_summary
from tests.unit.spamfilter import test_quarantine

jane, mailbox = test_quarantine.jane, test_quarantine.mailbox  # its fixtures
pytestmark = pytest.mark.django_db
FORGED = "=?utf-8?q?security=40bank.example_=3C?= <x@evil.example>"


@pytest.mark.parametrize(
    ("field", "name", "address"),
    [
        (FORGED, "security@bank.example <", "x@evil.example"),
        ("=?utf-8?q?evil=0D=0ABcc:_a@b.example?= <x@evil.example>", "evil Bcc: a@b.example",
         "x@evil.example"),
        ("=?utf-8?q?a=40bank.example=2C_b?= <x@evil.example>", "a@bank.example, b",
         "x@evil.example"),
        ("=?utf-8?b?SsO2cmc=?= <jorg@x.example>", "Jörg", "jorg@x.example"),
        ('"=?utf-8?q?J=C3=B6rg?=" <jorg@x.example>', "Jörg", "jorg@x.example"),
        ("jorg@x.example (=?utf-8?q?J=C3=B6rg?=)", "Jörg", "jorg@x.example"),
        ("plain@x.example", "", "plain@x.example"),
        # A mailer that encodes the whole field: read decoded, as before.
        ("=?utf-8?b?Sm9obiA8am9obkB4LmV4YW1wbGU+?=", "John", "john@x.example"),
    ],
)  # fmt: skip
def test_the_from_address_is_the_one_written_outside_encoded_words(field, name, address):
    summary = parse_summary(f"From: {field}\r\nSubject: x\r\n\r\nbody\r\n".encode())
    assert (summary.from_name, summary.from_address) == (name, address)


def test_the_quarantine_list_and_digest_show_the_real_sender(client, admin_a, jane):
    data = f"From: {FORGED}\r\nSubject: Your account\r\n\r\nPay.\r\n".encode()
    [item] = quarantine.quarantine_store(
        mailboxes=[jane], data=data, sender="x@evil.example", score=9.0, tags={}, reasons=[]
    )
    assert item.from_address == "x@evil.example"
    client.force_login(admin_a)
    page = client.get("/spam-filter/quarantine/").content.decode()
    assert "x@evil.example" in page and "security@bank.example" not in page
    digest = quarantine.digest_message("jane@example.test", [item]).decode()
    assert "  From:    x@evil.example\r\n" in digest
