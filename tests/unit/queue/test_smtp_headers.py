"""Headers the listeners add: the Received line (RFC 5321 4.4), Date and Message-ID when
missing, in the message's own line endings, and a DKIM signature over LF-only input."""

from datetime import UTC, datetime

from apps.domains import dkim, records
from apps.queue.smtp.headers import (
    TlsInfo,
    add_missing_headers,
    address_literal,
    has_header,
    header_end,
    line_ending,
    protocol_name,
    received_header,
)
from tests.unit.domains.test_dkim import _live_dnsfunc

NOW = datetime(2026, 11, 30, 10, 5, 7, tzinfo=UTC)


def test_it_tells_crlf_from_lf():
    assert line_ending(b"Subject: a\r\n\r\nbody\r\n") == b"\r\n"
    assert line_ending(b"Subject: a\n\nbody\n") == b"\n"
    assert line_ending(b"Subject: a") == b"\r\n"


def test_it_finds_the_end_of_the_header_section():
    assert header_end(b"A: 1\r\nB: 2\r\n\r\nbody") == len(b"A: 1\r\nB: 2\r\n")
    assert header_end(b"A: 1\nB: 2\n\nbody") == len(b"A: 1\nB: 2\n")
    assert header_end(b"\r\nbody only") == 0
    assert header_end(b"A: 1\r\n") == len(b"A: 1\r\n")
    assert has_header(b"message-id : <x@y>\r\n\r\n", "Message-ID")
    assert not has_header(b"Subject: x\r\n\r\nMessage-ID: <in the body>\r\n", "Message-ID")


def test_it_writes_the_received_line_with_tls_for_one_recipient():
    line = received_header(
        helo="client.test",
        ip="192.0.2.7",
        hostname="mx.test",
        protocol=protocol_name(extended=True, tls=True, authenticated=False, smtputf8=False),
        queue_id="0A1B2C3D4E5F",
        tls=TlsInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256),
        recipients=["jane@example.test"],
        now=NOW,
    )
    assert line == (
        b"Received: from client.test ([192.0.2.7])\r\n"
        b"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256 bits))\r\n"
        b"\tby mx.test (mailadmin) with ESMTPS id 0A1B2C3D4E5F\r\n"
        b"\tfor <jane@example.test>; Mon, 30 Nov 2026 10:05:07 +0000\r\n"
    )


def test_it_replaces_a_bogus_helo_and_names_no_recipient_of_several():
    line = received_header(
        helo="bad name; (x)",
        ip="2001:db8::1",
        hostname="mx.test",
        protocol=protocol_name(extended=True, tls=False, authenticated=True, smtputf8=True),
        queue_id="ID",
        tls=None,
        recipients=["a@example.test", "b@example.test"],
        now=NOW,
        eol=b"\n",
    )
    assert line == (
        b"Received: from [IPv6:2001:db8::1] ([IPv6:2001:db8::1])\n"
        b"\tby mx.test (mailadmin) with UTF8SMTPA id ID; Mon, 30 Nov 2026 10:05:07 +0000\n"
    )


def test_it_writes_address_literals():
    assert address_literal("::ffff:192.0.2.1") == "[192.0.2.1]"
    assert address_literal("[IPv6:::1]") == "[unknown]"
    assert protocol_name(extended=False, tls=False, authenticated=False, smtputf8=False) == "SMTP"


def test_it_adds_date_and_message_id_in_the_messages_line_endings():
    completed = add_missing_headers(b"Subject: hi\n\nbody\n", domain="example.test", now=NOW)
    head, _, body = completed.partition(b"\n\n")
    assert body == b"body\n"
    lines = head.split(b"\n")
    assert lines[:2] == [b"Subject: hi", b"Date: Mon, 30 Nov 2026 10:05:07 +0000"]
    assert lines[2].startswith(b"Message-ID: <") and lines[2].endswith(b"@example.test>")
    assert b"\r" not in completed


def test_it_keeps_date_and_message_id_the_client_gave():
    message = b"Date: Sun, 29 Nov 2026 08:00:00 +0000\r\nMessage-ID: <a@b>\r\n\r\nx\r\n"
    assert add_missing_headers(message, domain="example.test", now=NOW) == message


def test_it_completes_a_message_without_body():
    completed = add_missing_headers(b"Subject: hi", domain="example.test", now=NOW)
    assert completed.startswith(b"Subject: hi\r\nDate: Mon, 30 Nov 2026 10:05:07 +0000\r\n")
    assert completed.endswith(b">\r\n\r\n")


def test_it_signs_an_lf_message_so_that_it_verifies_unchanged(dns_server):
    pair = dkim.generate(dkim.RSA)
    dns_server.set_zone(
        records.dkim_name("example.test", "s1"),
        {"TXT": [dkim.txt_record(pair.algorithm, pair.public_key)]},
    )
    message = b"From: a@example.test\nSubject: lf\n\nline one\nline two\n"
    signature = dkim.sign(message, domain="example.test", selector="s1", key=pair)
    assert b"\r" not in signature and signature.endswith(b"\n")
    assert dkim.verify(signature + message, dnsfunc=_live_dnsfunc) is True
