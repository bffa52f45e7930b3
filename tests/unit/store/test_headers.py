"""Header parsing for lists never raises, whatever arrives."""

from __future__ import annotations

import pytest

from apps.store.headers import MAX_HEADER_BYTES, parse_summary

HOSTILE = [
    b"",
    b"\r\n\r\n",
    b"no headers at all, just text",
    b"Subject: =?utf-8?b?!!!notbase64?=\r\nFrom: =?x-unknown?q?abc?= <a@b>\r\n\r\n",
    b"Subject: \xff\xfe\xfa broken bytes\r\nFrom: \xc3\x28 <\xe2\x82@x>\r\n\r\n",
    b"Date: Mon, 99 Foo 99999 99:99:99 +9999\r\n\r\n",
    b"Date: Mon, 1 Jan 0001 00:00:00 +1400\r\n\r\n",
    b"Date: Fri, 31 Dec 9999 23:59:59 -1200\r\n\r\n",
    b'From: <<<@@@>>>,,,;;;"\r\nSubject: a\x00b\r\n\r\n',
    b"Subject: =?utf-8?q?nul=00here?=\r\n\r\n",
    b"Subject: =?utf-16?b?2D3eAA==?=\r\n\r\n",  # a lone surrogate once decoded
    b"From: " + b"a" * 2_000_000 + b"\r\n\r\n",
    b"Subject: x\r\n" + b" folded\r\n" * 100_000 + b"\r\n",
    b"X-Many: y\r\n" * 200_000,
]


@pytest.mark.parametrize("data", HOSTILE, ids=range(len(HOSTILE)))
def test_it_never_raises_and_returns_storable_text(data):
    summary = parse_summary(data)

    for text in (summary.subject, summary.from_name, summary.from_address, summary.message_id):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogates
    assert len(summary.subject) <= 998
    assert len(summary.from_name) <= 255
    assert len(summary.from_address) <= 320


def test_it_reads_only_the_header_block():
    data = b"Subject: real\r\n\r\nSubject: in the body\r\n"
    assert parse_summary(data).subject == "real"
    assert MAX_HEADER_BYTES <= 1024 * 1024


def test_it_turns_an_unparseable_date_into_none():
    assert parse_summary(b"Date: yesterday-ish\r\n\r\n").date is None
    assert parse_summary(b"Date: Mon, 1 Jan 1500 00:00:00 +1400\r\n\r\n").date is None


@pytest.mark.parametrize(
    ("data", "subject", "from_name"),
    [
        (
            b"Subject: Gr\xc3\xbc\xc3\x9fe\r\nFrom: J\xc3\xb6rg <j@x.example>\r\n\r\n",
            "Grüße",
            "Jörg",
        ),
        (b"Subject: caf\xe9 \x93quoted\x94\r\n\r\n", "café “quoted”", ""),
        (
            b"Subject: =?koi8-r?B?8NLJ18XU?=\r\nFrom: =?iso-8859-1?q?J=F6rg?= <j@x>\r\n\r\n",
            "Привет",
            "Jörg",
        ),
    ],
)
def test_it_reads_raw_utf8_undeclared_8bit_and_encoded_words(data, subject, from_name):
    summary = parse_summary(data)
    assert summary.subject == subject
    assert summary.from_name == from_name
