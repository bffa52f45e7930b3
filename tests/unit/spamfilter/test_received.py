"""The client a fetched message's provider accepted it from, read from its Received lines
as the MTAs that write them do; hostile headers name no client and never raise."""

from __future__ import annotations

import time

import pytest

from apps.spamfilter.received import (
    MAX_FIELD,
    MAX_HOPS,
    Hop,
    client_hop,
    hop_of,
    received_fields,
)


def message(*received: bytes) -> bytes:
    head = b"".join(b"Received: " + r + b"\r\n" for r in received)
    return (
        head + b"From: a@remote.test\r\nSubject: hi\r\n\r\nBody. Received: from x ([8.8.8.8])\r\n"
    )


@pytest.mark.parametrize(
    ("field", "hop"),
    [
        (  # Postfix
            b"from mail.remote.test (mail.remote.test [1.2.3.4])\r\n\tby mx.provider.test "
            b"(Postfix) with ESMTPS id 4Qx1;\r\n\tMon, 30 Nov 2026 10:00:01 +0000",
            Hop("1.2.3.4", "mail.remote.test", tls=True),
        ),
        (  # Postfix, no PTR name
            b"from helo.remote.test (unknown [81.2.69.142]) by mx.provider.test; x",
            Hop("81.2.69.142", "helo.remote.test"),
        ),
        (  # Gmail: the PTR name's final dot
            b"from mail-wr1.google.com (mail-wr1.google.com. [209.85.221.41])\r\n"
            b"        by mx.google.com with ESMTPS id x;",
            Hop("209.85.221.41", "mail-wr1.google.com", tls=True),
        ),
        (  # Exim: the PTR name first, the HELO in helo=
            b"from host.remote.test ([8.8.8.8] helo=Smtp.Remote.Test.)\r\n\tby mx with esmtps",
            Hop("8.8.8.8", "smtp.remote.test", tls=True),
        ),
        (  # qmail
            b"from unknown (HELO smtp.q.test) (9.9.9.9) by mx.q.test with SMTP; x",
            Hop("9.9.9.9", "smtp.q.test"),
        ),
        (  # IPv6 address literal
            b"from mx6.remote.test (mx6.remote.test [IPv6:2a00:1450:4864::1]) by mx; x",
            Hop("2a00:1450:4864::1", "mx6.remote.test"),
        ),
        (  # an IPv4-mapped address is the IPv4 address it is
            b"from mx.remote.test ([::ffff:8.8.4.4]) by mx; x",
            Hop("8.8.4.4", "mx.remote.test"),
        ),
        (  # a HELO that is no host name is no HELO; the IP still counts
            b"from bad!name/x ([1.0.0.1]) by mx; x",
            Hop("1.0.0.1", ""),
        ),
    ],
)
def test_it_reads_the_client_as_each_mta_writes_it(field, hop):
    assert client_hop(message(field)) == hop


@pytest.mark.parametrize(
    "field, tls",
    [
        (b"from a.test ([8.8.8.8]) by mx.test with ESMTPSA id 1; x", True),
        (b"from a.test ([8.8.8.8]) by mx.test with UTF8SMTPS id 1; x", True),
        (b"from a.test ([8.8.8.8]) by mx.test with LMTPS; x", True),
        (  # Postfix without smtpd_tls_received_header's protocol, with its TLS note
            b"from a.test (a.test [8.8.8.8]) (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384"
            b" (256/256 bits)) by mx.test (Postfix) with ESMTP id 1; x",
            True,
        ),
        (  # Microsoft
            b"from a.test (8.8.8.8) by b.test (10.0.0.1) with Microsoft SMTP Server"
            b" (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15; x",
            True,
        ),
        (b"from a.test ([8.8.8.8]) by mx.test with ESMTP id 1; x", False),
        (b"from a.test ([8.8.8.8]) by mx.test with SMTP; x", False),
        (b"from a.test ([8.8.8.8]) by mx.test with ESMTPSX; not a protocol name", False),
        (b"from esmtps.test ([8.8.8.8]) by mx.test with HTTP; x", False),
    ],
)
def test_it_reads_whether_the_hop_used_tls(field, tls):
    assert client_hop(message(field)).tls is tls


@pytest.mark.parametrize(
    "protocol, smtputf8",
    [
        (b"UTF8SMTP", True),
        (b"UTF8SMTPSA", True),
        (b"utf8lmtps", True),
        (b"ESMTPS", False),
        (b"UTF8SMTPX", False),
    ],
)
def test_it_reads_whether_the_hop_was_an_smtputf8_transaction(protocol, smtputf8):
    field = b"from a.test ([8.8.8.8]) by mx.test with " + protocol + b" id 1; x"
    assert client_hop(message(field)).smtputf8 is smtputf8


def test_with_no_client_named_the_topmost_field_says_whether_tls_was_used():
    private = b"from inside.test ([10.0.0.7]) by mx.provider.test with ESMTPS id 1; x"
    assert client_hop(message(private)) == Hop(tls=True)
    assert client_hop(message(private.replace(b"ESMTPS", b"ESMTP"))) == Hop()
    utf8 = private.replace(b"ESMTPS", b"UTF8SMTPS")
    assert client_hop(message(utf8)) == Hop(tls=True, smtputf8=True)


def test_it_takes_the_topmost_hop_with_a_public_ip():
    data = message(
        b"by mx.provider.test with HTTP; Mon, 30 Nov 2026",  # no from-clause
        b"from internal.provider.test ([10.1.2.3]) by mx.provider.test; x",  # private
        b"from mail.remote.test ([1.2.3.4]) by relay.provider.test; x",  # the one
        b"from forged.test ([5.6.7.8]) by mail.remote.test; x",  # below it: not read
    )
    assert client_hop(data) == Hop("1.2.3.4", "mail.remote.test")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"From: a@b.test\r\n\r\nReceived: from x ([8.8.8.8]) by y\r\n",  # in the body
        message(b"from localhost ([127.0.0.1]) by mx; x", b"from a ([192.168.1.5]) by mx; x"),
        message(b"from doc.test ([203.0.113.5]) by mx; x"),  # documentation range
        message(b"from x ([999.1.2.3]) by mx; x", b"from y ([1.2.3]) by mx; x"),
        message(b"by ([8.8.8.8]) with x; the IP is not in a from-clause"),
        message(b"from x by mx ([8.8.8.8]); after the from-clause"),
        message(b"\xff\xfe\x00 ([\x00]) garbage"),
    ],
)
def test_no_usable_hop_is_no_client(data):
    assert client_hop(data) == Hop()


def test_hostile_headers_are_bounded():
    huge = message(b"from " + b"a(" * 200_000 + b" [8.8.8.8]) by mx")
    started = time.perf_counter()
    assert client_hop(huge) == Hop()  # the IP is past MAX_FIELD characters: not read
    assert time.perf_counter() - started < 1
    folded = b"Received: from x\r\n" + b"\t(" + b"y" * 100 + b")\r\n" * 10_000 + b"\r\n"
    assert len(received_fields(folded)[0]) <= MAX_FIELD
    many = message(*[b"from h ([10.0.0.1]) by mx; x"] * MAX_HOPS, b"from h ([8.8.8.8]) by mx")
    assert client_hop(many) == Hop()  # only the first MAX_HOPS fields are read
    assert client_hop(message(b"from " + b"h" * 300 + b" ([8.8.8.8]) by mx")) == Hop("8.8.8.8")


@pytest.mark.parametrize(
    ("field", "hop"),
    [
        # Postfix and Sendmail write the client's HELO word as given: an address literal
        # there is the client's claim; the address is the one in the MTA's comment.
        (b"from [8.8.8.8] (unknown [5.6.7.8]) by mx; x", Hop("5.6.7.8", "[8.8.8.8]")),
        (b"from [8.8.8.8] (unknown [10.0.0.9]) by mx; x", None),
        (b"from [8.8.8.8] by mx; x", None),  # no address of the MTA's own
        # qmail's and Exim's HELO inside the comment
        (b"from unknown (HELO [8.8.8.8]) (5.6.7.8) by q; x", Hop("5.6.7.8", "[8.8.8.8]")),
        (b"from unknown (HELO [8.8.8.8]) (10.1.1.1) by q; x", None),
        (b"from host.test ([5.6.7.8] helo=[8.8.8.8]) by exim; x", Hop("5.6.7.8", "[8.8.8.8]")),
        # Exim's own `from [IP] (helo=x)` for a client without a PTR name
        (b"from [5.6.7.8] (helo=x.test) by exim; x", Hop("5.6.7.8", "x.test")),
        (b"from [5.6.7.8] (helo=[8.8.8.8]) by exim; x", Hop("5.6.7.8", "[8.8.8.8]")),
    ],
)
def test_the_clients_own_helo_never_names_its_address(field, hop):
    assert hop_of(field.decode()) == hop
