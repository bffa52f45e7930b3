"""Rules on how a message was relayed and written: each fires on the message built to show
it, with the score the rules file gives, and stays off the ordinary message beside it."""

from __future__ import annotations

import pytest

from apps.spamfilter.received import Hop
from apps.spamfilter.services import scan

pytestmark = pytest.mark.django_db


def _message(headers: str = "", body: str = "See you at noon.\r\n") -> bytes:
    return (
        f"{headers}From: Ann <ann@example.org>\r\nTo: You <you@example.net>\r\nSubject: Hi\r\n"
        "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n"
        f"MIME-Version: 1.0\r\n\r\n{body}"
    ).encode()


def _tags(message: bytes) -> dict[str, float]:
    verdict = scan(message=message, remote_ip="", ehlo_domain="", env_from="", env_rcpt_to=[])
    return {tag: result.value for tag, result in verdict.tags.items()}


# Public addresses: the documentation ranges (203.0.113.0/24, ...) count as private.
RELAYED_FROM_UNKNOWN = (
    "Received: from mx.example.net (mx.example.net [198.51.100.7])\r\n"
    "\tby mail.example.net (Postfix) with ESMTP id 1; Mon, 30 Nov 2026 10:00:05 +0000\r\n"
    "Received: from pc17 (unknown [88.198.10.20])\r\n"
    "\tby mx.example.net (Postfix) with SMTP id 2; Mon, 30 Nov 2026 10:00:03 +0000\r\n"
)


def test_it_flags_a_relay_that_took_the_message_from_a_host_without_reverse_dns(dns_server):
    assert _tags(_message(RELAYED_FROM_UNKNOWN))["RCVD_RDNS_UNKNOWN"] == 1.5


@pytest.mark.parametrize(
    "received",
    [
        # The client had a PTR name.
        "Received: from mx.example.org (mx.example.org [88.198.10.20])\r\n"
        "\tby mx.example.net (Postfix) with ESMTP id 2; Mon, 30 Nov 2026 10:00:03 +0000\r\n",
        # A private address: a hop inside the sender's own network.
        "Received: from pc17 (unknown [192.168.1.20])\r\n"
        "\tby mail.example.org (Postfix) with ESMTP id 2; Mon, 30 Nov 2026 10:00:03 +0000\r\n",
        # A user's authenticated submission, from any network.
        "Received: from laptop (unknown [88.198.10.20])\r\n\t(Authenticated sender: ann)\r\n"
        "\tby mail.example.org (Postfix) with ESMTPSA id 2; Mon, 30 Nov 2026 10:00:03 +0000\r\n",
        # qmail writes `unknown` when it does not look names up at all.
        "Received: from unknown (HELO mail.example.org) (88.198.10.20)\r\n"
        "\tby mx.example.net with SMTP; 30 Nov 2026 10:00:03 -0000\r\n",
        # Our own MX's line (RDNS_NONE asks DNS about the connecting host itself).
        "Received: from pc17 (unknown [88.198.10.20])\r\n"
        "\tby mx.example.net (mailadmin) with ESMTP id 2; Mon, 30 Nov 2026 10:00:03 +0000\r\n",
    ],
)
def test_it_leaves_relays_whose_client_had_a_name_or_needs_none(dns_server, received):
    assert "RCVD_RDNS_UNKNOWN" not in _tags(_message(received))


def test_it_flags_mail_marked_of_the_highest_priority(dns_server):
    assert _tags(_message("X-Priority: 1 (Highest)\r\n"))["HAS_X_PRIO_ONE"] == 1.0


@pytest.mark.parametrize("priority", ["3 (Normal)", "2", "10"])
def test_it_leaves_other_priorities(dns_server, priority):
    assert "HAS_X_PRIO_ONE" not in _tags(_message(f"X-Priority: {priority}\r\n"))


def _received_at(stamp: str) -> str:
    return (
        "Received: from mx.example.org (mx.example.org [88.198.10.20])\r\n"
        f"\tby mx.example.net (Postfix) with ESMTP id 2; {stamp}\r\n"
    )


def test_it_flags_a_date_hours_after_the_message_was_received(dns_server):
    # Date: 10:00 UTC; received at 05:30 UTC.
    received = _received_at("Mon, 30 Nov 2026 06:30:00 +0100")
    assert _tags(_message(received))["DATE_IN_FUTURE"] == 1.0


@pytest.mark.parametrize(
    "headers",
    [
        _received_at("Mon, 30 Nov 2026 08:00:00 +0000"),  # a clock two hours fast
        _received_at("Mon, 30 Nov 2026 10:00:04 +0000"),
        "",  # nothing says when it arrived
    ],
)
def test_it_leaves_a_date_near_the_time_the_message_was_received(dns_server, headers):
    assert "DATE_IN_FUTURE" not in _tags(_message(headers))


def _linked(url: str) -> bytes:
    return _message(body=f"Your statement is ready: {url}\r\n")


def test_it_flags_a_link_that_hides_its_host_behind_a_user_name(dns_server):
    tags = _tags(_linked("http://www.bank.example.com@198.51.100.7/login"))
    assert tags["URL_USERINFO"] == 1.5


@pytest.mark.parametrize(
    "url",
    [
        "https://www.bank.example.com/login?next=/@me",
        "https://example.com/users/@ann",
        "mailto:ann@example.org",
    ],
)
def test_it_leaves_links_with_an_at_sign_after_the_host(dns_server, url):
    assert "URL_USERINFO" not in _tags(_linked(url))


def _plain(content_type: str, body: bytes) -> bytes:
    head = _message().split(b"\r\n\r\n", 1)[0]
    return head + f"\r\nContent-Type: {content_type}\r\n".encode() + b"\r\n" + body


def test_it_flags_a_text_part_with_8bit_letters_and_no_charset(dns_server):
    tags = _tags(_plain("text/plain", "Çok güzel fiyatlar, hemen tıklayın\r\n".encode("cp1254")))
    assert tags["MISSING_CHARSET"] == 1.0


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain; charset=windows-1254", "Çok güzel fiyatlar\r\n".encode("cp1254")),
        ("text/plain", b"Plain ASCII needs no charset.\r\n"),
    ],
)
def test_it_leaves_text_whose_charset_is_named_or_not_needed(dns_server, content_type, body):
    assert "MISSING_CHARSET" not in _tags(_plain(content_type, body))


@pytest.mark.parametrize(
    "extra",
    ["Message-ID: <2@example.org>\r\n", "Subject: Hello again\r\n", "To: Bo <bo@example.net>\r\n"],
)
def test_it_flags_a_header_allowed_once_that_appears_twice(dns_server, extra):
    assert _tags(_message(extra))["MULTIPLE_UNIQUE_HEADERS"] == 3.0


def test_it_leaves_headers_that_may_repeat(dns_server):
    repeated = "Received: from a.example.org by b.example.org; Mon, 30 Nov 2026 10:00:01 +0000\r\n"
    tags = _tags(_message(repeated * 2 + "Comments: one\r\nComments: two\r\n"))
    assert "MULTIPLE_UNIQUE_HEADERS" not in tags


def _message_id(value: str) -> bytes:
    return _message().replace(b"Message-ID: <1@example.org>", f"Message-ID: {value}".encode())


@pytest.mark.parametrize("value", ["hayjjrvykgrb@example.org", "<9PS291LhupY>", "<>"])
def test_it_flags_a_message_id_that_is_not_left_at_right_in_brackets(dns_server, value):
    assert _tags(_message_id(value))["INVALID_MSGID"] == 1.5


@pytest.mark.parametrize(
    "value",
    [
        "<20261130.1@mail.example.org>",
        "(sent by a list) <LYRIS-1-2--ann@example.org@lists.example.org>",
    ],
)
def test_it_leaves_a_message_id_of_the_rfc_5322_shape(dns_server, value):
    assert "INVALID_MSGID" not in _tags(_message_id(value))


def test_it_flags_8bit_bytes_in_a_part_sent_as_7bit(dns_server):
    body = "Größte Auswahl, kleinste Preise\r\n".encode()
    for encoding in ("", "Content-Transfer-Encoding: 7bit\r\n"):
        message = _plain(f"text/plain; charset=utf-8\r\n{encoding}".rstrip("\r\n"), body)
        assert _tags(message)["R_BAD_CTE_7BIT"] == 1.0, encoding


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("8bit", "Größte Auswahl\r\n".encode()),
        ("quoted-printable", b"Gr=C3=B6=C3=9Fte Auswahl\r\n"),
        ("7bit", b"Plain ASCII\r\n"),
    ],
)
def test_it_leaves_parts_whose_transfer_encoding_fits_their_bytes(dns_server, encoding, body):
    message = _plain(f"text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}", body)
    assert "R_BAD_CTE_7BIT" not in _tags(message)


MIME_BODY = (
    b"--646007810.993513231406.JavaMail\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n"
    b"Today's special announcement.\r\n\r\n--646007810.993513231406.JavaMail\r\n"
    b"Content-Type: text/html; charset=iso-8859-1\r\n\r\n<p>Today's special</p>\r\n"
    b"--646007810.993513231406.JavaMail--\r\n"
)


def test_it_flags_mime_parts_under_a_header_that_declares_no_multipart(dns_server):
    assert _tags(_message(body=MIME_BODY.decode()))["MIME_BOUNDARY_UNDECLARED"] == 1.5


def test_it_leaves_mime_parts_the_header_declares(dns_server):
    boundary = "646007810.993513231406.JavaMail"
    declared = _plain(f'multipart/alternative; boundary="{boundary}"', MIME_BODY)
    assert "MIME_BOUNDARY_UNDECLARED" not in _tags(declared)
    signature = b"Thanks,\r\n--\r\nAnn\r\nContent-Type: what the form asks for\r\n"
    assert "MIME_BOUNDARY_UNDECLARED" not in _tags(_message(body=signature.decode()))


def test_it_flags_an_html_part_without_an_html_tag(dns_server):
    fragment = _plain("text/html; charset=utf-8", b"<p>Cheap <b>watches</b></p>\r\n")
    assert _tags(fragment)["HTML_MIME_NO_HTML_TAG"] == 1.0


def test_it_leaves_an_html_document(dns_server):
    document = b"<!DOCTYPE html>\r\n<HTML lang=en><body><p>Minutes attached.</p></body></HTML>\r\n"
    assert "HTML_MIME_NO_HTML_TAG" not in _tags(_plain("text/html; charset=utf-8", document))


def test_it_leaves_an_html_fragment_beside_a_text_part(dns_server):
    # Gmail's text/html alternative is a bare `<div dir="ltr">`, with no <html> tag: the rule
    # (SpamAssassin's) is about HTML-only mail, not every text-and-HTML message from Gmail.
    boundary = "000000000000a1b2c3"
    body = (
        f"--{boundary}\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nSee you at noon.\r\n"
        f"--{boundary}\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n"
        '<div dir="ltr">See you at noon.</div>\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    gmail = _plain(f'multipart/alternative; boundary="{boundary}"', body)
    assert "HTML_MIME_NO_HTML_TAG" not in _tags(gmail)


def _dated(date: str) -> bytes:
    return _message().replace(b"Mon, 30 Nov 2026 10:00:00 +0000", date.encode())


def test_it_flags_a_date_without_a_zone(dns_server):
    assert _tags(_dated("Fri, 7 Dec 2001 07:01:03"))["INVALID_DATE"] == 1.5


@pytest.mark.parametrize(
    "date",
    ["Fri, 7 Dec 2001 07:01:03 +1100", "Fri, 7 Dec 2001 07:01 EST", "7 Dec 2001 07:01:03 GMT"],
)
def test_it_leaves_a_date_with_a_zone(dns_server, date):
    assert "INVALID_DATE" not in _tags(_dated(date))


HOP = (
    "Received: from pc17 (pc17.example.org [198.51.100.7])\r\n"
    "\tby mail.example.org (Postfix) with ESMTP id 3; Mon, 30 Nov 2026 10:00:01 +0000\r\n"
)


def test_it_flags_a_received_line_below_the_fields_the_author_wrote(dns_server):
    # Ratware's made-up hop, written among its own From/To/Subject lines.
    message = _message().replace(b"Subject: Hi\r\n", b"Subject: Hi\r\n" + HOP.encode())
    assert _tags(message)["RCVD_BELOW_ORIGIN"] == 2.0


@pytest.mark.parametrize(
    "message",
    [
        # Every relay's line on top, as relays prepend them.
        _message(HOP + RELAYED_FROM_UNKNOWN),
        # List mail: its software rebuilds the header.
        _message("List-Id: <talk.example.org>\r\n").replace(
            b"Subject: Hi\r\n", b"Subject: Hi\r\n" + HOP.encode()
        ),
    ],
)
def test_it_leaves_received_lines_on_top_and_list_mail(dns_server, message):
    assert "RCVD_BELOW_ORIGIN" not in _tags(message)


def test_it_flags_an_encoded_word_in_an_address(dns_server):
    message = _message().replace(
        b"From: Ann <ann@example.org>", b"From: =?iso-2022-jp?B?YW5u?=@example.org"
    )
    assert _tags(message)["ENCODED_WORD_IN_ADDRESS"] == 1.5


@pytest.mark.parametrize(
    "sender",
    [
        # An encoded display name, as mail programs write one.
        b"From: =?utf-8?B?w4VzYQ==?= <asa@example.org>",
        # Folded, the encoded word in the phrase.
        b"From: =?utf-8?Q?=C3=85sa?=\r\n <asa@example.org>",
    ],
)
def test_it_leaves_encoded_display_names(dns_server, sender):
    message = _message().replace(b"From: Ann <ann@example.org>", sender)
    assert "ENCODED_WORD_IN_ADDRESS" not in _tags(message)


def test_it_reads_the_header_only_up_to_its_crlf_blank_line(dns_server):
    """A CRLF message whose body has a bare blank line further down: that body text is not
    taken for the header."""
    body = "Quoted:\r\nFrom: =?iso-2022-jp?B?YW5u?=@example.org\r\nHi\n\nBye\r\n"
    assert "ENCODED_WORD_IN_ADDRESS" not in _tags(_message(body=body))


def test_it_flags_an_outlook_express_version_with_a_word_after_it(dns_server):
    mailer = "X-Mailer: Microsoft Outlook Express 5.00.2919.6900 DM\r\n"
    assert _tags(_message(mailer))["RATWARE_OE_MALFORMED"] == 1.0


@pytest.mark.parametrize(
    "mailer",
    [
        "Microsoft Outlook Express 6.00.2800.1106",
        "Microsoft Outlook Express 5.50.4133.2400",
        "Microsoft Outlook, Build 10.0.2627",
    ],
)
def test_it_leaves_outlook_versions_as_outlook_writes_them(dns_server, mailer):
    assert "RATWARE_OE_MALFORMED" not in _tags(_message(f"X-Mailer: {mailer}\r\n"))


def test_it_flags_a_subject_with_raw_8bit_characters(dns_server):
    message = _message().replace(b"Subject: Hi", "Subject: Sch\u00f6n".encode("latin-1"))
    assert _tags(message)["SUBJ_NEEDS_ENCODING"] == 1.0


@pytest.mark.parametrize("subject", [b"Subject: Hi", b"Subject: =?utf-8?Q?Sch=C3=B6n?="])
def test_it_leaves_ascii_and_encoded_subjects(dns_server, subject):
    message = _message(body="Gr\u00fc\u00dfe\r\n").replace(b"Subject: Hi", subject)
    assert "SUBJ_NEEDS_ENCODING" not in _tags(message)


def test_it_leaves_a_raw_utf8_subject_of_an_smtputf8_transaction(dns_server):
    """RFC 6532 allows raw UTF-8 in header fields of mail sent with SMTPUTF8 (RFC 6531):
    that is how an internationalised mail program writes them, not a bulk tool's paste."""
    message = _message().replace(b"Subject: Hi", "Subject: Sch\u00f6n".encode())
    args = dict(message=message, remote_ip="", ehlo_domain="", env_from="", env_rcpt_to=[])
    assert "SUBJ_NEEDS_ENCODING" not in scan(**args, smtputf8=True).tags
    assert scan(**args).tags["SUBJ_NEEDS_ENCODING"].value == 1.0
    # Latin-1 bytes are no UTF-8: SMTPUTF8 does not allow them.
    latin = _message().replace(b"Subject: Hi", "Subject: Sch\u00f6n".encode("latin-1"))
    assert "SUBJ_NEEDS_ENCODING" in scan(**{**args, "message": latin}, smtputf8=True).tags
    # Fetched mail: the provider's Received line (`with UTF8SMTPS`) says, not our fetch.
    assert "SUBJ_NEEDS_ENCODING" not in scan(**args, judged_hop=Hop(smtputf8=True)).tags
    assert "SUBJ_NEEDS_ENCODING" in scan(**args, judged_hop=Hop(), smtputf8=True).tags


def test_it_reads_the_subject_only_in_the_header(dns_server):
    """A CRLF message whose body has a bare blank line further down: a Subject line in the
    body above it is not the message's."""
    body = "Fwd:\r\nSubject: Gr\u00fc\u00dfe\r\nHi\n\nBye\r\n"
    assert "SUBJ_NEEDS_ENCODING" not in _tags(_message(body=body))


OUTLOOK_EXPRESS = (
    "X-Mailer: Microsoft Outlook Express 6.00.2800.1106\r\n"
    "X-MimeOLE: Produced By Microsoft MimeOLE V6.00.2800.1106\r\n"
)
HTML_ONLY = "Content-Type: text/html; charset=us-ascii\r\n"
HTML_DOCUMENT = "<html><body><p>Hi</p></body></html>\r\n"


def test_it_flags_html_alone_under_an_outlook_mailer(dns_server):
    message = _message(OUTLOOK_EXPRESS + HTML_ONLY, HTML_DOCUMENT)
    assert _tags(message)["FORGED_OUTLOOK_HTML"] == 2.0


@pytest.mark.parametrize(
    "headers, body",
    [
        # Outlook's own way: the HTML beside a text alternative.
        (
            OUTLOOK_EXPRESS + 'Content-Type: multipart/alternative; boundary="b1"\r\n',
            "--b1\r\nContent-Type: text/plain\r\n\r\nHi\r\n"
            f"--b1\r\nContent-Type: text/html\r\n\r\n{HTML_DOCUMENT}--b1--\r\n",
        ),
        # HTML alone from a program that is not Outlook.
        ("X-Mailer: Mozilla 4.7 [en] (Win98; I)\r\n" + HTML_ONLY, HTML_DOCUMENT),
    ],
)
def test_it_leaves_outlook_with_a_text_part_and_html_from_other_mailers(dns_server, headers, body):
    assert "FORGED_OUTLOOK_HTML" not in _tags(_message(headers, body))
